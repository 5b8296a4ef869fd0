"""The local target's machinery: the charts' rendered pods run as processes on 127.0.0.1."""
