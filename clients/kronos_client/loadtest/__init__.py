"""``kronos-client loadtest``: a closed-loop load sweep over gRPC and REST.

* :mod:`~kronos_client.loadtest.workload` builds the requests (sliding windows of a CSV),
* :mod:`~kronos_client.loadtest.runner` runs closed-loop workers per concurrency level,
* :mod:`~kronos_client.loadtest.serverstats` reads the server's Prometheus metrics around a level,
* :mod:`~kronos_client.loadtest.report` summarises (percentiles, throughput) into a table and JSON,
* :mod:`~kronos_client.loadtest.plot` draws latency against concurrency,
* :mod:`~kronos_client.loadtest.command` is the command line.
"""
