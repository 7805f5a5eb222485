"""The C forest kernel, built at install; everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scorer.trees._walk",
            sources=["scorer/trees/_walk.c"],
            extra_compile_args=["-O3", "-Wall", "-Wextra"],
        )
    ]
)
