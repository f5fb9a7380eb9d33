"""The compiled transform (``arm_etl/_transform_c.c``): optional, so an installation without a C compiler
still works on the pure-Python path (``arm_etl.transform.COMPILED`` tells which one runs)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "arm_etl._transform_c",
            ["arm_etl/_transform_c.c"],
            optional=True,
        )
    ]
)
