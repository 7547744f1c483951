"""Knowledge base: the HPO release (terms, ancestors, diseases, annotations) and HGNC genes in DuckDB."""
