"""Named fakes used by the local target in place of programs that cannot be installed here.

There is exactly one: :mod:`harness.fakes.model_server`, a stand-in for
``ghcr.io/llm-d/llm-d-inference-sim`` (the Go module proxy refuses to serve that module on
these machines). Clusters always run the real simulator image; see that module's docstring.
"""
