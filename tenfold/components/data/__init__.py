"""Data loaders. Each keeps its real path (torchvision datasets, files under the data root) and falls back, in
order, to data shipped inside an installed package, then to ../shared/data; the source taken is returned so
flows can log and tag it."""
