"""DIDs: syntax, documents, did:key, did:peer, resolution -- all pure computation.

- :mod:`.syntax`    DID / DID URL syntax and limits (``split_did_url``, ``validate_did``)
- :mod:`.document`  the DID document model (``DIDDocument``, ``VerificationMethod``, ``Service``)
- :mod:`.did_key`   did:key create / resolve
- :mod:`.did_peer`  did:peer numalgo 2 and 4 create / resolve
- :mod:`.resolver`  the ``DIDResolver`` seam, static / chained resolvers, ``default_resolver``

Import from the submodules; this package file only names them.
"""
