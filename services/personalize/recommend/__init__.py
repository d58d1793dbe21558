"""Product recommendations: trained by the personalize worker, served next to the offers."""
