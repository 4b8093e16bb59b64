"""The text queries every speed benchmark encodes, in English and in Russian."""

QUERIES_EN = [
    "cat on a sofa",
    "a wedding in a tent",
    "sunset over the sea with boats",
    "my dog playing in the snow",
    "birthday cake with candles",
    "a red car parked near an old brick building at night",
]
QUERIES_RU = [
    "кот на диване",
    "свадьба в шатре",
    "закат над морем и лодки",
    "собака играет в снегу",
    "торт со свечами на день рождения",
    "красная машина у старого кирпичного дома ночью",
]
