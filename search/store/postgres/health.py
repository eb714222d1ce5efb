"""(to be written)"""


class PgHealthMixin:
    pass
