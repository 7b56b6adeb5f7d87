import re

from setuptools import find_packages, setup

with open("pyiqa/version.py") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="pyiqa-uniqa",
    version=VERSION,
    description="UniQA (unified image quality and aesthetics assessment) in a pyiqa-style framework",
    packages=find_packages(include=["pyiqa", "pyiqa.*", "train_clip", "train_clip.*"]),
    # Everything the library reads at run time ships inside the package: the paper's numbers
    # (results_table) and the experiment configs and prompt templates (options/ is a link to
    # pyiqa/configs/), so a plain `pip install .` works outside the clone.
    package_data={"pyiqa.protocols": ["*.yml"], "pyiqa": ["configs/*/*.yml", "configs/*/*/*.yml"]},
    python_requires=">=3.9",
    license="MIT",
    install_requires=[
        "torch",
        "torchvision",
        "open_clip_torch>=3.3,<4",
        "pyyaml",
        "numpy",
        "scipy",
        "pandas",
        "pillow",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "scikit-image",
        "openpyxl",      # pandas.read_excel: SPAQ, CSIQ and AGIQA annotations ship as XLSX
    ],
    extras_require={
        # generate_descriptions.py talks to OpenAI-compatible MLLM servers through the maintained client
        "data": ["openai>=1.30,<3"],
        # pyiqa ... -o FOLDER/ --format parquet, and .parquet tables of image paths
        "parquet": ["pyarrow>=14"],
        "test": ["pytest", "openai>=1.30,<3", "pyarrow>=14"],
    },
    entry_points={"console_scripts": [
        "pyiqa=pyiqa.cli:main",
        "pyiqa-train=pyiqa.train:cli",
        "pyiqa-test=pyiqa.test:cli",
        "pyiqa-train-clip=train_clip.trainer:cli",
        "pyiqa-prepare-dataset=pyiqa.data.prepare.cli:main",
        "pyiqa-run-splits=pyiqa.protocols.cli:run_splits",
        "pyiqa-eval-zero-shot=pyiqa.protocols.cli:eval_zero_shot",
        "pyiqa-results-table=pyiqa.protocols.cli:results_table",
        "pyiqa-generate-descriptions=train_clip.corpus.cli:generate_descriptions",
        "pyiqa-purify-comments=train_clip.corpus.cli:purify_comments",
        "pyiqa-build-corpus=train_clip.corpus.cli:build_corpus",
    ]},
)
