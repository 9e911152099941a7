"""rtsvc.train: the training subpackage (prepare, config, features, fit, cluster, index, compress)."""
