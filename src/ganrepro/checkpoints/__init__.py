"""Official GANformer checkpoints -> ganrepro files, without running code from the file.

Two formats come from the official GANformer code (github.com/dorarad/gansformer): the
released TensorFlow pickles (tensorflow.py) and the PyTorch training snapshots
(pytorch.py). Plain `pickle.load` would run code named by the file; unpickler.py maps the
few globals these files need to inert stand-ins or to validating data constructors, after
a bounded dry run of the opcodes (ganrepro.picklescan), and refuses every other global
with one sentence naming the file and the global. walk.py walks what it built, bounded.

kwargs.py maps the official kwargs to a registry model and hyper-parameters, official.py
the official PyTorch tensor names to ganrepro's (the converter of the equivalence work,
tests/test_official.py), released.py puts them together (`import_checkpoint`), and
discriminator.py keeps an imported discriminator as a file of its own.
"""
