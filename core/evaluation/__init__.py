"""How good a product is: station lists and in-situ series, paired metrics (R, ubRMSE, bias, RMSE,
anomaly R), score tables, conservation and heterogeneity diagnostics of a downscaled product, and
the site-metric report. Method-agnostic: it scores rasters, whoever wrote them."""
