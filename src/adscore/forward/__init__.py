"""Forwarders: small long-running agents that ship host logs to the deployed ingest endpoints.

``adscore forward docker`` (:mod:`adscore.forward.docker`) follows a Docker engine's event stream
and posts signed ``DockerEventBatch`` bodies. Nothing here imports a cloud SDK.
"""
