"""Contrastive image-text pre-training of the CLIP backbone that UniQA scores with (UniQA stage 1).

A training *application*, kept apart from the ``pyiqa`` library (as ``open_clip_train`` is from
``open_clip``): importing ``pyiqa`` never pulls this in. It reuses the library's option parsing,
logging, distributed helpers, datasets and the UniQA arch for zero-shot evaluation, and exports a plain
OpenAI-format CLIP state dict that ``pyiqa`` loads as ``backbone:``.

Entry point: ``pyiqa-train-clip -opt demo`` (in a clone also ``python train_clip/train.py -opt
options/train_clip/demo.yml``); the programme is ``train_clip.trainer.main(argv)``.
"""
