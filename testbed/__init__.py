"""testbed: a containerized multi-node testbed for Kubernetes networking."""
