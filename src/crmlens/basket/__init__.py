"""Market-basket analysis: baskets from the workspace and frequent itemsets.

Three miners of our own (Eclat, FP-Growth, Apriori) run on sparse or vertical data and give
identical itemsets; see ``docs/basket.md``.
"""

from crmlens.basket.data import Baskets, baskets_from_lists, load_baskets
from crmlens.basket.itemsets import Itemsets, frequent_itemsets, min_count_for

__all__ = ["Baskets", "Itemsets", "baskets_from_lists", "frequent_itemsets", "load_baskets",
           "min_count_for"]
