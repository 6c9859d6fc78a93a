"""DICOMweb (QIDO-RS search, WADO-RS retrieve into a local cache, STOW-RS store), Qt-free.

Credentials live only in the HTTP session: never in a message, a log line or a file we write.
"""
