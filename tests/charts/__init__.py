"""Chart tests: lint, render, offline schema validation and the charts' contracts (Helm 3 and 4)."""
