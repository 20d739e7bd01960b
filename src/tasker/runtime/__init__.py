"""Running steps: the worker, the executor (the one seam to user code), the in-process
runner, what a handler sees (``StepContext``), and where handlers run (threads or child
processes). This floor stands above the ``Tasker`` facade and uses only it."""
