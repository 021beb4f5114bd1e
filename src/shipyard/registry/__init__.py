"""The model registry: registered models, versions made from runs, aliases, flavors."""
