"""Studies at scale: a declarative spec -> units of work -> a resumable Parquet table, serial or on Ray."""
