"""Decision-tree learners (ID3, C4.5, CART) with the scikit-learn estimator API."""
