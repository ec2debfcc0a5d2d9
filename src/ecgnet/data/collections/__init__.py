"""Labelled collections of ECGs behind one interface (:class:`Collection`): PTB-XL
(:func:`ptbxl_collection`) and manifests (:func:`read_manifest`), written by :mod:`.make`."""

from ecgnet.data.collections.base import Collection, CollectionData
from ecgnet.data.collections.manifest import read_label_map, read_manifest
from ecgnet.data.collections.ptbxl import ptbxl_assignment, ptbxl_collection

__all__ = ["Collection", "CollectionData", "ptbxl_assignment", "ptbxl_collection", "read_label_map",
           "read_manifest"]
