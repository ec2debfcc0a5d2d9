"""Whole-record training on records of different lengths: batches of one length group, no signal ever repeated.

A whole-record config (``data.crop_seconds: null``) trains the model on each record whole, as ``predict`` scores it.
A manifest's record under 10 s sits in the cache as its signal repeated to fill a 10 s row, its own length kept
beside it (:class:`~ecgnet.data.dataset.Segments`), and ``predict`` scores it at that length
(:func:`ecgnet.inference.batch.predict_proba`), so read whole, its row would teach the model a tiled signal with a
join it never sees at prediction. The rule, here and nowhere else:

- an epoch draws its records as the plain loader does — one shuffle, ``training.min_epoch_crops``' passes or the
  oversampler's draws —, from a generator of its own seeded with the run's seed (every process of a distributed run
  draws the same batches, and each trains on every world-size-th of them);
- the draws are ordered by own length in bands of :data:`BAND_SECONDS` (in random order within a band), cut into
  batches — as many and of the sizes the plain loader makes: a last partial batch holds records drawn at random, and
  is dropped where the plain loader drops it — and the batches are shuffled;
- within a batch every record is cut to the batch's shortest own length, a longer one at a random offset drawn as a
  training crop's is (:meth:`ecgnet.data.dataset.CropDataset.cut`), so no sample past a record's end is read.

PTB-XL, a manifest whose records are all 10 s or longer, and any config of crops (whose crops stay within a record's
own samples already) train through the plain loader, unchanged: :func:`length_grouped_loader` returns None (as for
distillation's training sets, which do not draw within records' own lengths).
Validation and cross-validation's scoring already score a short record at its own length
(:mod:`ecgnet.training.module`).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, default_collate

from ecgnet.config import Config
from ecgnet.data.dataset import CropDataset

# records within 0.5 s of one another share batches: a batch cut to its shortest record loses little of the others,
# yet which records share a batch changes from epoch to epoch
BAND_SECONDS = 0.5


def length_grouped_loader(train_set, sampler: Sampler | None, config: Config, drop_last: bool) -> DataLoader | None:
    """The training loader of a whole-record config on records shorter than their rows (the module's rule); None —
    the plain loader, bit for bit as before — for a config of crops or records that are all their rows' length.
    ``sampler``: the epoch's draws as :func:`ecgnet.training.sampling.epoch_sampler` makes them (None: one shuffle)."""
    lengths = train_set.own_lengths() if isinstance(train_set, CropDataset) else None
    if config.data.window is not None or lengths is None:
        return None
    lengths = np.asarray(lengths, np.intp)
    if (lengths >= train_set.split.signal.shape[-1]).all():
        return None
    generator = getattr(sampler, "generator", None)
    if generator is None:  # the plain shuffle or min_epoch_crops' passes, drawn alike on every process
        generator = torch.Generator().manual_seed(config.seed)
        sampler = RandomSampler(range(len(train_set)), num_samples=len(sampler) if sampler is not None else None,
                                generator=generator)
    band = max(1, int(BAND_SECONDS * config.data.sampling_rate))
    batches = LengthBatches(sampler, lengths, config.training.batch_size, drop_last, band, generator)
    # batch_size=None: each item of the sampler is a whole batch, which a distributed run shards as it is
    return DataLoader(CutToShortest(train_set, lengths), sampler=batches, batch_size=None,
                      num_workers=config.training.num_workers)


def group_by_length(drawn: np.ndarray, lengths: np.ndarray, batch_size: int, drop_last: bool, band: int,
                    generator: torch.Generator) -> list[np.ndarray]:
    """An epoch's ``drawn`` records (random order) as batches of neighbouring own lengths, in random order. The
    ``len(drawn) % batch_size`` drawn first make the partial batch (dropped with ``drop_last``), so that which
    records it holds — or leaves out — is random, as with the plain shuffle; the sort is stable, so records of one
    band keep their random order (records of one length are batched exactly as they were drawn)."""
    rest = len(drawn) % batch_size
    partial, full = drawn[:rest], drawn[rest:]
    full = full[np.argsort(lengths[full] // band, kind="stable")]
    batches = [full[i:i + batch_size] for i in range(0, len(full), batch_size)]
    if rest and not drop_last:
        batches.append(partial)
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


class LengthBatches(Sampler):
    """Each epoch, the records ``records`` draws, grouped into batches by :func:`group_by_length`: lists of record
    indices (``generator``: the one ``records`` draws from, so a resumed run restores both with one state)."""

    def __init__(self, records: Sampler, lengths: np.ndarray, batch_size: int, drop_last: bool, band: int,
                 generator: torch.Generator):
        self.records, self.lengths, self.batch_size = records, lengths, batch_size
        self.drop_last, self.band, self.generator = drop_last, band, generator

    def __len__(self) -> int:
        """As many batches as the plain loader makes of the same draws (the one-cycle schedule counts them)."""
        full, rest = divmod(len(self.records), self.batch_size)
        return full + int(bool(rest) and not self.drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        drawn = np.fromiter(iter(self.records), np.intp)
        for batch in group_by_length(drawn, self.lengths, self.batch_size, self.drop_last, self.band, self.generator):
            yield batch.tolist()


class CutToShortest(Dataset):
    """A batch of the training set by its record indices, each record cut to the batch's shortest own length (the
    dataset's random window within the record: never across the join of a repeated row), then collated."""

    def __init__(self, dataset: CropDataset, lengths: np.ndarray):
        self.dataset, self.lengths = dataset, lengths

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        shortest = int(self.lengths[rows].min())
        return default_collate([self.dataset.cut(i, shortest) for i in rows])
