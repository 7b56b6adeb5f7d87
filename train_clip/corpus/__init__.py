"""The pre-training corpus: MLLM-written quality and aesthetic descriptions, purified AVA comments, and
the merged image-text JSON that ``train_clip`` reads (UniQA's data construction, paper section 3).

Modules are imported explicitly by the scripts that use them (``scripts/generate_descriptions.py``,
``scripts/purify_comments.py``, ``scripts/build_corpus.py``); only purification loads a CLIP model.
"""
