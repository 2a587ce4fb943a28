"""The demo of the system on one machine: a virtual card (``cardsim``), a station
(``personalization_station``) and the back office (``cms``) brought together. It sits above all of
them and nothing imports it but the tests and benchmarks."""
