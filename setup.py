"""Builds the optional native core of the pickle walker; all metadata lives in pyproject.toml.

The extension is optional: without a C compiler the install still succeeds and the
pure-Python walker is used (see modelaudit.scanners._pickle_vm.PickleWalker).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "modelaudit.scanners._walkcore",
            sources=["src/modelaudit/scanners/_walkcore.c"],
            optional=True,
        )
    ]
)
