"""Self-supervised pretraining of the time encoder (SimCLR), then fine-tuning with ``training.init_from``.

Read top to bottom:

- :mod:`~ecgnet.pretrain.config` — the pretraining config (``configs/pretrain_*.yaml``), validated;
- :mod:`~ecgnet.pretrain.data` — which records: folds 1–8 only, with a guard that refuses fold 9/10;
- :mod:`~ecgnet.pretrain.views` — two augmented 2.5 s views of each record;
- :mod:`~ecgnet.pretrain.loss` — NT-Xent, the contrastive loss;
- :mod:`~ecgnet.pretrain.simclr` — projection MLP and the Lightning module;
- :mod:`~ecgnet.pretrain.weights` — saving the encoder (``encoder.safetensors``) and loading it for
  fine-tuning;
- :mod:`~ecgnet.pretrain.run` — ``ecgnet pretrain``: all of the above, writing ``runs/<name>/``.
"""
