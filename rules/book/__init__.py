"""The CTP-exact account book (pure): AccountBook and what it is made of.

`rules.book.book` the book and its events; `columns` its columns, policy and contract index;
`marking` the vectorized marks; `settlement` the trading day; `orders` frozen amounts;
`views` drill-downs. Single-side margin is rules.margin, fees and close order rules.fees.
"""

from rules.book.book import AccountBook
from rules.book.columns import (
    ACCOUNT_COLUMNS,
    FACTORS,
    POSITION_COLUMNS,
    SUMS,
    AccountPolicy,
    BookError,  # fmt: skip
    ContractIndex,
)

__all__ = ["ACCOUNT_COLUMNS", "FACTORS", "POSITION_COLUMNS", "SUMS", "AccountBook", "AccountPolicy",
           "BookError", "ContractIndex"]  # fmt: skip
