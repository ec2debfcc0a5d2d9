"""Data: every way an ECG gets in, up to the arrays the models read.

Read in this order:

- ``records.py``        one WFDB record → :class:`~ecgnet.data.records.ECGRecord` (12 leads, mV), checked by
                        ``wfdb_header.py`` before a sample is read; ``readers/`` does the same for device
                        files (MUSE, Philips, HL7 aECG, DICOM, SCP-ECG, EDF, …), ``readers/detect.py`` first;
- ``limits.py``         what any reader agrees to decode, checked before it allocates;
- ``leads.py``, ``quality.py``, ``patient.py``  lead names, per-lead signal quality, a patient's fields;
- ``record_files.py``   what a user names on the command line → the records to read;
- ``ptbxl.py``          PTB-XL's tables → labels for the six tasks, metadata, folds; ``download.py`` fetches
                        and verifies it; ``signals.py`` caches its signals as one memory-mapped array;
- ``dataset.py``        a PTB-XL task as arrays per split, and the torch Dataset of training crops;
  ``augment.py``        the crops' augmentations;
- ``collections/``      any labelled collection — a manifest CSV of your own records, or PTB-XL — behind one
                        interface, with its own signal cache and fold splitting; ``external.py``: SNOMED
                        codes of Challenge records → PTB-XL superclasses.
"""
