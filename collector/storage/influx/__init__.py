"""InfluxDB 2.x administration: buckets, retention and the Flux downsampling tasks."""
