"""Personalized product recommendations: association rules, item-to-item collaborative
filtering and popularity within segments, blended by :class:`HybridRecommender`, evaluated on a
time split against the popularity baseline. See ``docs/recommend.md``.
"""

from crmlens.recommend.data import Interactions, load_interactions
from crmlens.recommend.hybrid import HybridRecommender
from crmlens.recommend.item_cf import ItemCFRecommender
from crmlens.recommend.popular import PopularRecommender
from crmlens.recommend.rules import RulesRecommender
from crmlens.recommend.scoring import SOURCES, TopK

METHODS = {"hybrid": HybridRecommender, "rules": RulesRecommender,
           "item_cf": ItemCFRecommender, "popular": PopularRecommender}

__all__ = ["METHODS", "SOURCES", "HybridRecommender", "Interactions", "ItemCFRecommender",
           "PopularRecommender", "RulesRecommender", "TopK", "load_interactions"]
