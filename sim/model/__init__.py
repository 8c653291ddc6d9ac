"""The SimPy mail-flow model: traffic, next-hop queues, metrics."""
