"""Model builders, one module per family. Imported only by create_model."""
