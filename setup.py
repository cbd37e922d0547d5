"""Build the helper's one C module; everything else is in pyproject.toml.

``tungui_helper._drain`` (helper/_drain.c) is the read loop of a held
device's capture.  It is optional: without a C compiler the package still
builds, and the helper reads in Python, more slowly (helper/drain.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tungui_helper._drain",
            ["helper/_drain.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=True,
        )
    ]
)
