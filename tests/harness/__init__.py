"""Harness that deploys the RAG + MaaS stack to a target and exposes its endpoints to tests."""
