"""What the dag-processor builds: one refresh DAG (and retention DAG) per accelerated dataset."""
