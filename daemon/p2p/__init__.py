"""The libp2p transport: peer identity, the ``didcomm/v2`` protocol, a fast path.

Modules, one job each:

- :mod:`.identity`    the persistent Ed25519 peer identity and peer ids
- :mod:`.framing`     unsigned-varint length-prefixed frames (sans-I/O)
- :mod:`.multistream` multistream-select messages (sans-I/O)
- :mod:`.admission`   inbound stream and message-rate limits (sans-I/O)
- :mod:`.compat`      the thin layer of fixes over py-libp2p's stream API
- :mod:`.didcomm_v2`  the extension's ``didcomm/v2`` protocol, both ends
- :mod:`.deliver`     ``/didcommd/deliver/1.0.0``, pipelined acknowledged delivery
- :mod:`.host`        the node: ``serve()`` and ``P2PNode.send()``
- :mod:`.endpoint`    ``libp2p-peerId:`` service endpoints in DID documents
- :mod:`.errors`      every error the transport raises

Importing any of them is cheap: libp2p itself is imported when a node starts.
"""
