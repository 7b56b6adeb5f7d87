"""The pre-training corpus: MLLM-written quality and aesthetic descriptions, purified AVA comments, and
the merged image-text JSON that ``train_clip`` reads (UniQA's data construction, paper section 3).

Modules are imported explicitly by the commands that use them (:mod:`train_clip.corpus.commands`, run as
``pyiqa-generate-descriptions``, ``pyiqa-purify-comments``, ``pyiqa-build-corpus``); only purification
loads a CLIP model.
"""
