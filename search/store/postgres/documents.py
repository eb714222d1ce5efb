"""(to be written)"""


class PgDocumentsMixin:
    pass
