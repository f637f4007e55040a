"""Makes ``testkit`` (helpers shared by the test folders) importable from every folder."""
