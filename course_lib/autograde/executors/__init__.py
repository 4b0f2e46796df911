"""Where submissions run, behind one interface (`base.Executor`: describe, run, a context
manager): warm sandboxed workers on this machine (`sandboxed`), the same workers on a Dask
cluster (`dask_cluster`), stock `nbgrader autograde` per submission (`stock_nbgrader`).
`warm` holds what the first two share. Each is imported only when chosen."""
