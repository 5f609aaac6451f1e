"""The PostgreSQL ledger: several ``serve`` and ``worker`` processes, on several machines, share one database.

Nothing here is imported unless ``WAVEHOOK_DB`` is a ``postgresql://`` URL; the driver (psycopg 3 and
psycopg_pool) is the optional extra ``postgres``.
"""
