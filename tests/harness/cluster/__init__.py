"""Cluster plumbing for the kind and existing targets.

Everything here builds command lines (plans) and runs them through a `CommandRunner`, so
unit tests inject a recording runner and check the exact helm/kubectl/kind calls.
"""
