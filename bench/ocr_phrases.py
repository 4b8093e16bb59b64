"""Russian and English text for the OCR evaluation set (bench/ocr_set.py): what people forward
to the bot as pictures — receipts, chat screenshots, slides, memes, notes, tickets, posters.

Each layout kind draws from its own pools, so the set has several hundred distinct words per
language and a query can name words that only a few pictures hold.
"""

from __future__ import annotations

SHOPS = {
    "ru": [
        "Пятёрочка", "Магнит", "Перекрёсток", "ВкусВилл", "Лента", "Ашан", "Дикси",
        "Аптека Ригла", "Кофейня Шоколадница", "Пекарня Хлеб Насущный", "Строительный Петрович",
        "Книжный Читай-город", "Азбука Вкуса", "Спортмастер",
    ],
    "en": [
        "Tesco Express", "Sainsbury's Local", "Whole Foods Market", "Trader Joe's",
        "Corner Bakery", "Green Street Pharmacy", "Blue Bottle Coffee", "Hardware Depot",
        "City Books", "Fresh Farm Grocery", "Harbor Fish Market", "Sunrise Deli",
    ],
}  # fmt: skip

ITEMS = {
    "ru": [
        "Молоко", "Хлеб бородинский", "Сыр российский", "Масло сливочное", "Яйца куриные",
        "Кефир", "Творог", "Сметана", "Гречка", "Рис круглый", "Макароны", "Сахар", "Чай чёрный",
        "Кофе молотый", "Яблоки", "Бананы", "Апельсины", "Картофель", "Морковь", "Лук репчатый",
        "Помидоры", "Огурцы", "Курица охлаждённая", "Фарш говяжий", "Колбаса докторская",
        "Сосиски", "Пельмени", "Шоколад горький", "Печенье овсяное", "Вода минеральная",
        "Сок апельсиновый", "Пиво светлое", "Вино красное", "Салфетки", "Зубная паста",
        "Шампунь", "Стиральный порошок", "Батарейки", "Пакет", "Капучино", "Круассан",
        "Пирожок с капустой", "Аспирин", "Витамины", "Пластырь", "Саморезы", "Краска белая",
        "Тетрадь в клетку", "Ручка синяя", "Гвозди",
    ],
    "en": [
        "Whole milk", "Sourdough bread", "Cheddar cheese", "Salted butter", "Free range eggs",
        "Greek yogurt", "Oat porridge", "Basmati rice", "Spaghetti", "Brown sugar",
        "Green tea", "Ground coffee", "Apples", "Bananas", "Oranges", "Potatoes", "Carrots",
        "Onions", "Tomatoes", "Cucumber", "Chicken breast", "Minced beef", "Smoked salmon",
        "Sausages", "Frozen pizza", "Dark chocolate", "Oat cookies", "Sparkling water",
        "Orange juice", "Lager beer", "Red wine", "Paper towels", "Toothpaste", "Shampoo",
        "Laundry detergent", "Batteries", "Carrier bag", "Cappuccino", "Croissant",
        "Blueberry muffin", "Ibuprofen", "Vitamins", "Plasters", "Wood screws", "White paint",
        "Notebook", "Blue pen", "Nails", "Lightbulb", "Avocado",
    ],
}  # fmt: skip

RECEIPT_WORDS = {
    "ru": {
        "title": ["Кассовый чек", "Товарный чек", "Чек продажи"],
        "kind": ["Приход", "Продажа"],
        "total": "ИТОГО",
        "paid": ["Безналичными", "Наличными", "Оплата картой"],
        "thanks": ["Спасибо за покупку", "Ждём вас снова", "Сохраняйте чек"],
        "currency": "₽",
        "cashier": ["Кассир Иванова", "Кассир Петров", "Кассир Смирнова", "Кассир Кузнецов"],
    },
    "en": {
        "title": ["RECEIPT", "SALES RECEIPT", "CUSTOMER COPY"],
        "kind": ["Purchase", "Sale"],
        "total": "TOTAL",
        "paid": ["Card payment", "Cash", "Contactless"],
        "thanks": ["Thank you for shopping", "Please come again", "Keep this receipt"],
        "currency": "$",
        "cashier": ["Cashier Emma", "Cashier Oliver", "Cashier Sophie", "Cashier Jack"],
    },
}

CHAT = {
    "ru": [
        "Привет! Ты уже дома?", "Скинь, пожалуйста, фотографии с праздника",
        "Завтра встречаемся у метро в семь", "Не забудь купить молоко и хлеб",
        "Мама звонила, спрашивала про дачу", "Я опоздаю минут на двадцать",
        "Посмотри презентацию до совещания", "Билеты на концерт уже купила",
        "Кот опять уронил цветок с подоконника", "Давай закажем пиццу на вечер",
        "Врач перенёс приём на четверг", "Где ключи от гаража?",
        "Поздравляю с днём рождения!", "Спасибо, очень приятно",
        "Отправил договор на почту", "Когда будет готов отчёт?",
        "Сегодня обещают сильный дождь", "Возьми зонт и тёплую куртку",
        "Поезд задерживается на час", "Я уже на вокзале, жду тебя",
        "Собрание жильцов в субботу в полдень", "Кто заберёт детей из школы?",
        "Оплатил интернет и электричество", "Пришли номер квартиры",
        "Ремонт закончат через неделю", "Хочу записаться в бассейн",
        "Какой пароль от вайфая?", "Купил новый велосипед",
        "Собака съела мои наушники", "Вечером посмотрим сериал",
        "Курьер привезёт заказ после обеда", "Бабушка испекла пирог с вишней",
        "Пойдём в кино на выходных?", "Забронировал столик в ресторане",
        "Напомни про лекарство утром", "Экзамен по математике в понедельник",
        "Лекция по истории отменяется", "Прислали штраф за парковку",
        "Отпуск согласовали на август", "Сосед снова сверлит стену",
    ],
    "en": [
        "Hey, are you home yet?", "Can you send me the photos from the party",
        "Let's meet at the station at seven", "Don't forget to buy milk and bread",
        "Mom called asking about the cottage", "I'll be twenty minutes late",
        "Please check the slides before the meeting", "I already bought the concert tickets",
        "The cat knocked the plant off the windowsill again", "Shall we order pizza tonight",
        "The dentist moved my appointment to Thursday", "Where are the garage keys?",
        "Happy birthday to you!", "Thanks, that's really kind",
        "I sent the contract by email", "When will the report be ready?",
        "They promise heavy rain today", "Take an umbrella and a warm jacket",
        "The train is delayed by an hour", "I'm at the platform waiting for you",
        "Residents meeting on Saturday at noon", "Who is picking the kids up from school?",
        "Paid the internet and electricity bills", "Send me the apartment number",
        "The renovation will finish next week", "I want to sign up for the swimming pool",
        "What's the wifi password?", "Bought a new bicycle yesterday",
        "The dog chewed my headphones", "Let's watch the series this evening",
        "The courier will deliver after lunch", "Grandma baked a cherry pie",
        "Movies this weekend?", "Booked a table at the restaurant",
        "Remind me about the medicine tomorrow", "Maths exam is on Monday",
        "The history lecture is cancelled", "Got a parking fine in the mail",
        "My vacation was approved for August", "The neighbour is drilling the wall again",
    ],
}  # fmt: skip

CHAT_NAMES = {
    "ru": ["Аня", "Дима", "Мама", "Сергей", "Катя", "Олег", "Работа", "Соседи"],
    "en": ["Anna", "Mike", "Mom", "Steve", "Kate", "Oliver", "Work", "Neighbours"],
}

SLIDES = {
    "ru": [
        ("Итоги квартала", ["Выручка выросла на двенадцать процентов", "Новые клиенты в регионах",
                            "Затраты на логистику снизились"]),
        ("План развития продукта", ["Мобильное приложение к осени", "Интеграция с банками",
                                    "Поддержка голосовых команд"]),
        ("Архитектура системы", ["Очередь задач и воркеры", "База данных с репликацией",
                                 "Мониторинг и алерты"]),
        ("Основы матанализа", ["Предел последовательности", "Производная и интеграл",
                               "Ряды Тейлора"]),
        ("Безопасность данных", ["Шифрование при передаче", "Резервные копии каждую ночь",
                                 "Двухфакторная аутентификация"]),
        ("Маркетинговая стратегия", ["Целевая аудитория студенты", "Реклама в социальных сетях",
                                     "Партнёрская программа"]),
        ("Бюджет на следующий год", ["Зарплаты и премии", "Аренда офиса", "Обучение сотрудников"]),
        ("История Древнего Рима", ["Республика и сенат", "Императоры и легионы",
                                   "Падение западной империи"]),
        ("Анализ рисков проекта", ["Задержка поставок оборудования", "Нехватка разработчиков",
                                   "Изменение законодательства"]),
        ("Проблемы в продакшне", ["Утечка памяти в сервисе", "Медленные запросы к базе",
                                  "Откат релиза в пятницу"]),
    ],
    "en": [
        ("Quarterly results", ["Revenue grew twelve percent", "New customers in Europe",
                               "Shipping costs went down"]),
        ("Product roadmap", ["Mobile app by autumn", "Banking integrations",
                             "Voice command support"]),
        ("System architecture", ["Task queue and workers", "Replicated database",
                                 "Monitoring and alerting"]),
        ("Introduction to calculus", ["Limits of sequences", "Derivatives and integrals",
                                      "Taylor series"]),
        ("Data protection", ["Encryption in transit", "Nightly backups",
                             "Two factor authentication"]),
        ("Marketing strategy", ["Target audience students", "Social media advertising",
                                "Referral programme"]),
        ("Budget for next year", ["Salaries and bonuses", "Office rent", "Staff training"]),
        ("History of ancient Rome", ["Republic and senate", "Emperors and legions",
                                     "Fall of the western empire"]),
        ("Project risk analysis", ["Hardware delivery delays", "Shortage of developers",
                                   "Regulatory changes"]),
        ("Incidents in production", ["Memory leak in the service", "Slow database queries",
                                     "Friday release rollback"]),
    ],
}  # fmt: skip

MEMES = {
    "ru": [
        ("Когда пятница", "а дедлайн в понедельник"), ("Я после отпуска", "первый день на работе"),
        ("Деплой в продакшн", "в пятницу вечером"), ("Когда кот", "сел на клавиатуру"),
        ("Мой код", "работает и я не знаю почему"), ("Ожидание", "реальность"),
        ("Когда зарплата", "пришла и сразу ушла"), ("Студент перед сессией", "открывает учебник"),
        ("Понедельник", "снова пришёл без предупреждения"), ("Никто", "абсолютно никто"),
        ("Когда мама", "нашла дневник"), ("Тестировщик", "нашёл ещё одну ошибку"),
    ],
    "en": [
        ("When it's Friday", "but the deadline is Monday"), ("Me after vacation", "first day back"),
        ("Deploying to production", "on a Friday evening"),
        ("When the cat", "sits on the keyboard"),
        ("My code", "works and I don't know why"), ("Expectation", "reality"),
        ("When payday", "comes and goes instantly"), ("Students before exams", "opening the book"),
        ("Monday", "arrived without warning again"), ("Nobody", "absolutely nobody"),
        ("When mom", "finds the report card"), ("The tester", "found another bug"),
    ],
}  # fmt: skip

NOTES = {
    "ru": [
        ["Список дел", "позвонить сантехнику", "забрать посылку", "оплатить квартиру"],
        ["Рецепт блинов", "мука два стакана", "молоко пол литра", "три яйца и щепотка соли"],
        ["Конспект лекции", "формула Ньютона Лейбница", "интеграл по частям"],
        ["Напоминание", "полить цветы", "выгулять собаку", "купить корм"],
        ["Пароль от роутера", "смотри на обороте коробки"],
        ["Расписание тренировок", "вторник бег", "четверг плавание", "суббота йога"],
        ["Подарки к Новому году", "папе шарф", "сестре книгу", "бабушке плед"],
        ["Объявление", "потерялась кошка", "рыжая с белым пятном", "вознаграждение"],
    ],
    "en": [
        ["To do list", "call the plumber", "pick up the parcel", "pay the rent"],
        ["Pancake recipe", "two cups of flour", "half a litre of milk", "three eggs and salt"],
        ["Lecture notes", "fundamental theorem of calculus", "integration by parts"],
        ["Reminder", "water the plants", "walk the dog", "buy pet food"],
        ["Router password", "see the back of the box"],
        ["Training schedule", "Tuesday running", "Thursday swimming", "Saturday yoga"],
        ["Christmas presents", "scarf for dad", "book for my sister", "blanket for grandma"],
        ["Lost cat", "ginger with a white patch", "reward offered"],
    ],
}  # fmt: skip

TICKETS = {
    "ru": {
        "title": ["Посадочный талон", "Электронный билет", "Билет на концерт", "Билет в театр"],
        "cities": ["Москва", "Казань", "Новосибирск", "Екатеринбург", "Сочи", "Калининград",
                   "Владивосток", "Самара", "Иркутск", "Мурманск"],
        "words": ["Рейс", "Вагон", "Место", "Выход", "Отправление", "Прибытие", "Пассажир",
                  "Ряд", "Партер", "Начало"],
    },
    "en": {
        "title": ["Boarding pass", "E-ticket", "Concert ticket", "Theatre ticket"],
        "cities": ["London", "Manchester", "Edinburgh", "Dublin", "Berlin", "Lisbon", "Prague",
                   "Vienna", "Copenhagen", "Barcelona"],
        "words": ["Flight", "Coach", "Seat", "Gate", "Departure", "Arrival", "Passenger",
                  "Row", "Stalls", "Doors open"],
    },
}  # fmt: skip

POSTERS = {
    "ru": [
        "Распродажа до пятидесяти процентов", "Осторожно злая собака", "Ремонт обуви и ключей",
        "Вход только по пропускам", "Парковка запрещена", "Свежая выпечка каждое утро",
        "Открыто круглосуточно", "Выставка современного искусства", "Городской марафон в мае",
        "Ярмарка мёда и сыра", "Не курить", "Бесплатный вайфай для гостей",
    ],
    "en": [
        "Sale up to fifty percent off", "Beware of the dog", "Shoe repair and key cutting",
        "Staff only beyond this point", "No parking", "Fresh pastries every morning",
        "Open twenty four hours", "Modern art exhibition", "City marathon in May",
        "Honey and cheese fair", "No smoking", "Free wifi for guests",
    ],
}  # fmt: skip
