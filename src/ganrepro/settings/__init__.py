"""What a config means, without torch: the only part of ganrepro that building the DAG imports.

- schema:   where the config schema is and what it declares (its defaults)
- config:   load, validate and complete a config; one sentence per mistake
- limits:   upper bounds on every size, seed and count
- hparams:  the models' hyper-parameter classes, their choices and ranges
- registry: one entry per model name (hyper-parameters, networks, label, capabilities)
- presets:  the official per-dataset presets and a dataset's effective settings
- batch:    the training batch against snapshots, processes and minibatch-std groups
- run:      effective_run, the complete settings of one run
- studies:  a config's studies expanded into points, each with the config of its runs

Nothing here imports torch, not even inside a function; ganrepro.models builds the networks
the registry names.
"""
