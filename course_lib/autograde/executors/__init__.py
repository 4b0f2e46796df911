"""Where submissions run: warm sandboxed workers on this machine (`sandboxed`), the same
workers on a Dask cluster (`dask_cluster`)."""
