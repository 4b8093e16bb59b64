# Russian texts of the bot.
# Messages are sent with HTML parse mode: markup here is kept as written; values passed in are
# escaped by the caller. Numbers are printed without grouping (1234, not 1,234).
# Plural variants use CLDR categories: [one] [few] [many] *[other] (see the language's rules).

## The language's own name, shown in /settings.
language-name = Русский

## Errors and the command menu (bot/app.py)

app-error = Что-то пошло не так, и я не смог это обработать. Попробуйте ещё раз чуть позже.
app-error-short = Не получилось, попробуйте ещё раз.
app-command-start = Что умеет бот
app-command-help = Как добавлять картинки и искать
app-command-stats = Что в вашей коллекции
app-command-similar = В ответ на элемент: найти похожие
app-command-delete = В ответ на элемент: удалить его
app-command-duplicates = Похожие картинки: оставить или удалить
app-command-settings = Результаты на странице, строгость, язык
app-command-forget = Удалить всю коллекцию

## The bot's profile descriptions (bot/courtesy.py)

courtesy-description =
    Я нахожу картинки в ваших собственных фото и видео.

    Отправьте или перешлите мне фото, альбомы и видео, а потом опишите, что ищете («кот на диване», «закат над морем»), или пришлите фото, чтобы найти похожие. В любом чате: @{ $bot } и запрос.
courtesy-short-description = Находит картинки в ваших фото и видео по описанию или по образцу.

## Access refused (bot/middlewares.py)

middlewares-not-allowed = Это частный бот: у вас нет доступа. Попросите владельца добавить ваш id { $uid } в ALLOWED_USERS или запустите свою копию.

## What happened to the items sent (bot/reports.py)

reports-saved-photo = ✅ Сохранено.
reports-saved-video = ✅ Видео сохранено: { $frames } { $frames ->
        [one] кадр
        [few] кадра
       *[many] кадров
    } для поиска.
reports-saved-animation = ✅ GIF сохранён: { $frames } { $frames ->
        [one] кадр
        [few] кадра
       *[many] кадров
    } для поиска.
reports-saved-video-note = ✅ Видеосообщение сохранено: { $frames } { $frames ->
        [one] кадр
        [few] кадра
       *[many] кадров
    } для поиска.
reports-saved-thumbnail = ✅ Сохранена только обложка: файл больше 20 МБ, а больше бот скачать из Telegram не может. { reports-local-server-hint }
reports-near-duplicate = Похоже на то, что у вас уже есть, — сохранил на всякий случай. Если дубль не нужен, ответьте на него командой /delete.
reports-duplicate = Это уже есть в вашей коллекции.
reports-failed = ❌ Не сохранено: { $reason }
reports-video-progress = ⏳ Обрабатываю видео… { $percent }%
reports-video-started = ⏳ Обрабатываю видео…
reports-album-progress = ⏳ Сохраняю альбом: { $done } из { $total }…
reports-album-saved-all = ✅ Альбом сохранён: { $total } { $total ->
        [one] элемент
        [few] элемента
       *[many] элементов
    }.
reports-album-saved-some = Из альбома сохранено { $saved } из { $total }.
reports-album-all-duplicates = Всё из этого альбома ({ $total }) уже есть в вашей коллекции.
reports-batch-progress = ⏳ Сохраняю: { $done } из { $total }…
reports-batch-saved-all = ✅ Сохранено: { $total } { $total ->
        [one] элемент
        [few] элемента
       *[many] элементов
    }.
reports-batch-saved-some = Сохранено { $saved } из { $total }.
reports-batch-all-duplicates = Всё это ({ $total }) уже есть в вашей коллекции.
reports-resumed-header = После перезапуска я закончил сохранять то, что вы присылали ранее: { $saved } из { $total }.
reports-line-saved = • сохранено: { $n }
reports-line-duplicate = • уже были в коллекции: { $n }
reports-line-near = • похожи на то, что у вас уже есть (сохранены): { $n }
reports-line-thumbnail = • больше 20 МБ, сохранена только обложка: { $n }
reports-line-failed = • не сохранено ({ $reason }): { $n }
reports-not-media-document = Файл «{ $name }» — не картинка и не видео, такое я не храню. Присылайте фото, видео, GIF или картинки файлами — их можно будет найти по описанию.
reports-local-server-hint = Владелец бота может снять этот предел, запустив локальный сервер Bot API (<code>TELEGRAM_API_BASE</code>, см. README).
reports-reason-image-truncated = файл повреждён
reports-reason-image-truncated-sentence = картинка повреждена или обрезана. Пришлите оригинал ещё раз.
reports-reason-image-unsupported = формат не читается
reports-reason-image-unsupported-sentence = не могу прочитать это как картинку: формат не поддержан.
reports-reason-image-empty = пустой файл
reports-reason-image-empty-sentence = файл пустой.
reports-reason-image-too-large = слишком много пикселей
reports-reason-image-too-large-sentence = картинка слишком большая (слишком много пикселей).
reports-reason-image-too-complex = файл слишком сложный
reports-reason-image-too-complex-sentence = эту картинку слишком долго раскодировать: в файле тысячи лишних частей — похоже, он повреждён. Пришлите её в обычном формате (JPEG или PNG).
reports-reason-video-too-large = слишком большие кадры
reports-reason-video-too-large-sentence = кадры этого видео или GIF слишком большие (слишком много пикселей).
reports-reason-video-too-complex = GIF слишком сложный
reports-reason-video-too-complex-sentence = эту анимацию слишком долго раскодировать: файл устроен необычно или повреждён. Пришлите её как видео (MP4).
reports-reason-video-unreadable = видео не читается
reports-reason-video-unreadable-sentence = не могу прочитать это видео: формат неизвестен или файл повреждён.
reports-reason-video-empty = в видео нет кадров
reports-reason-video-empty-sentence = в этом видео нет кадров, которые я мог бы прочитать.
reports-reason-file-too-large = больше 20 МБ
reports-reason-file-too-large-sentence = файл больше 20 МБ, а больше бот скачать из Telegram не может. { reports-local-server-hint }
reports-reason-thumbnail-unreadable = обложка не читается
reports-reason-thumbnail-unreadable-sentence = файл больше 20 МБ, а его обложку прочитать не удалось. { reports-local-server-hint }
reports-reason-file-gone = файл недоступен
reports-reason-file-gone-sentence = Telegram больше не отдаёт этот файл. Пришлите его ещё раз.
reports-reason-fetch = не скачалось
reports-reason-fetch-sentence = не удалось скачать файл из Telegram. Попробуйте позже.
reports-reason-quota = коллекция заполнена
reports-reason-quota-sentence = коллекция заполнена.
reports-reason-not-media = не картинка и не видео
reports-reason-not-media-sentence = это не картинка и не видео.
reports-reason-default = ошибка
reports-reason-default-sentence = что-то пошло не так с моей стороны. Попробуйте ещё раз.

## Collection limits (bot/services.py)

quota-items = Коллекция заполнена: { $limit } элементов — это предел. Удалите лишнее (/delete в ответ на элемент или /forget), чтобы добавить новое.
quota-video = Предел видео в коллекции — { $limit } мин. Это видео уже не поместится.

## Buttons under a result page (bot/sessions.py)

sessions-more = Ещё ▸
sessions-strict = Строже
sessions-loose = Шире
sessions-active = ✓ { $label }

## Commands, settings and unsupported content (bot/handlers/commands.py)

commands-start =
    Привет, { $name }! Я нахожу картинки в ваших собственных фото и видео.

    • Перешлите или отправьте мне фото, альбомы и видео — я их запомню.
    • Потом напишите, что ищете, например <i>кот на диване</i>, или ответьте фотографией на любое сообщение, чтобы найти похожие.
    /help — подробности.
commands-start-inline =
    <b>Поиск из любого чата</b>

    В любом чате напишите <code>@{ $bot }</code> и пару слов, например <code>@{ $bot } кот на диване</code>. Над клавиатурой появятся подходящие фото из вашей коллекции — нажмите на одно, чтобы отправить его в этот чат.

    Ищу только в вашей коллекции, и список результатов видите только вы. Чтобы добавить картинки, отправьте или перешлите их мне сюда.
commands-help =
    <b>Как пользоваться</b>

    <b>Добавить.</b> Перешлите или отправьте фото, альбом, видео, GIF, кружок или картинку файлом. Повтор я узнаю («уже в коллекции»). Видео индексируется по кадрам; у файлов больше 20 МБ — только по обложке (полный размер — со своим сервером Bot API, см. README).

    <b>Искать.</b> Просто напишите запрос по-русски или по-английски: <i>свадьба в шатре</i>, <i>red car at night</i>. Я смотрю и на картинку, и на её текст: слова на изображении (их я прочитаю вскоре после сохранения), подпись, имя файла, канал, откуда переслано.
    • <code>собака -пляж</code>: то, что подходит к слову с минусом, в результаты не попадёт.
    • <code>"счёт март"</code>: эти слова рядом и в этом порядке (в любой форме) в тексте: на картинке, в подписи, в имени файла. Запрос из одних кавычек ищет только по тексту.
    • <code>2024</code>, <code>март 2024</code>: за этот год или месяц; <code>после:2024-03-01</code>, <code>до:2023</code>: диапазон дат.
    • <code>видео</code>, <code>гиф</code>, <code>фото</code>: только такие.
    • <code>от:@канал</code>: пересланные из этого канала или от этого человека.
    • <code>сначала новые</code> (или <code>сначала старые</code>): по дате, а не по сходству.
    • Можно вместе: <code>чек 2024 от:@magazin сначала новые</code>. Английские слова (after:, from:, video, newest) тоже понимаю.
    • Фото в ответ на любое сообщение — поиск похожих (это фото не сохраняется).
    • Фото с подписью, начинающейся с «?», — поиск по фото и тексту вместе: <i>?такой же, но зимой</i>.
    • /similar в ответ на свой элемент или результат — похожие на него.
    • /delete в ответ на элемент или результат — удалить его.
    • Кнопки под результатами: «Ещё», строже / мягче.

    <b>В любом чате:</b> напишите <code>@{ $bot } запрос</code> — появятся ваши фото.

    <b>Команды:</b> /stats — что в коллекции; /duplicates — похожие друг на друга картинки: оставить или удалить одну; /settings — результатов на странице, строгость, язык; /forget — удалить всё.

    <b>Приватность.</b> Видите свои элементы только вы (в группе — общая коллекция группы, и удалить похожую картинку или всё через /forget могут только её админы). Я храню идентификаторы файлов Telegram и векторы для поиска, а не сами файлы. /forget удаляет всё безвозвратно.
commands-stats-empty =
    Коллекция пуста. Перешлите мне фото или видео, чтобы начать.

    Модели: { $models }
commands-stats =
    <b>Ваша коллекция</b>: { $total } { $total ->
        [one] элемент
        [few] элемента
       *[many] элементов
    }
    { $kinds }
    Только по обложке (файл больше лимита): { $thumbs }
    Картинок и кадров видео в поиске: { $units }
    Индекс: { $index }
    { $queue }Модели: { $models }
commands-stats-queue =
    Ещё обрабатывается: { $n }
    {""}
commands-stats-failed =
    Не удалось прочитать: { $n }
    {""}
commands-forget-empty = Ваша коллекция и так пуста.
commands-forget-ask = Удалить всю коллекцию ({ $n } { $n ->
        [one] элемент
        [few] элемента
       *[many] элементов
    }) и настройки? Это нельзя отменить.
commands-forget-admins-only = Удалить коллекцию группы могут только её администраторы.
commands-forget-yes = Да, удалить всё
commands-forget-no = Отмена
commands-forget-done = Готово: удалено { $n } { $n ->
        [one] элемент
        [few] элемента
       *[many] элементов
    }. Коллекция пуста.
commands-forget-cancelled = Отменено, ничего не удалено.
commands-forget-invalid = Эта кнопка больше не действует. Отправьте /forget ещё раз.
commands-settings =
    <b>Настройки</b>
    Результатов на странице: { $page }
    Строгость: { $strictness }. Строже — только самые близкие совпадения, мягче — больше.
    Язык: { $language }
commands-strictness-strict = строго
commands-strictness-normal = обычно
commands-strictness-loose = мягко
commands-saved = Сохранено
commands-button-invalid = Эта кнопка больше не действует.
commands-button-stale = Это сообщение устарело. Отправьте команду ещё раз.
commands-unsupported-sticker = Стикеры я не храню. Чтобы добавить картинку, отправьте её как фото.
commands-unsupported-audio = Я ищу по картинкам, а голосовые и аудио не содержат изображений. Пришлите фото или видео.
commands-unsupported-document = Этот файл не картинка и не видео ({ $name }). Я храню фото, видео и изображения файлом (JPEG, PNG, WebP, GIF...).
commands-unsupported-command = Не знаю такой команды. Список — в /help.
commands-unsupported-text = Поиск сейчас недоступен. Попробуйте позже.
commands-unsupported = Такое я не храню. Пришлите фото, альбом, видео или картинку файлом — а потом ищите текстом. Подробнее: /help.
commands-kind-photo = { $n } фото
commands-kind-video = { $n } видео
commands-kind-animation = { $n } GIF
commands-kind-video-note = { $n } { $n ->
        [one] кружок
        [few] кружка
       *[many] кружков
    }
commands-kind-document = { $n } { $n ->
        [one] картинка файлом
        [few] картинки файлом
       *[many] картинок файлом
    }
commands-size = { $value } { $unit ->
        [kb] КБ
        [mb] МБ
        [gb] ГБ
       *[b] Б
    }

## Inline mode (bot/handlers/inline.py)

inline-video = Видео { $duration }
inline-document = Файл-картинка
inline-add-photos = Добавить фото в коллекцию
inline-nothing = Ничего не нашлось — открыть бота

## Search answers (bot/handlers/search.py)

search-summary = Найдено: <b>{ $total }</b> за { $ms } мс
search-range = {""} · показаны { $first }–{ $last }
search-excluded =
    {""}
    Без: { $terms }
search-skipped =
    {""}
    { $n } { $n ->
        [one] элемент
        [few] элемента
       *[many] элементов
    } не отправить: Telegram больше не знает эти файлы (перешлите их заново).
search-no-match = По запросу «{ $query }» ничего не нашлось. Попробуйте сказать иначе: опишите, что на картинке (предметы, цвета, место), короче или другими словами.
search-no-match-photo = Ничего похожего не нашлось. Попробуйте другое фото или опишите картинку словами.
search-empty = В вашей коллекции пока пусто: перешлите мне фото, альбомы или видео, и я найду их по описанию.
search-similar-alone = Кроме этого элемента, искать пока не среди чего: добавьте ещё фото.
search-past-end = Больше результатов нет.
search-only-exclusions = В запросе только то, что исключить ({ $terms }). Напишите, что искать, например: «кот на диване -собака».
search-empty-query = Напишите словами, что на картинке, например: «закат над морем».
search-bad-photo = Не получилось прочитать эту картинку: { $why }. Пришлите другую.
search-why-image-empty = файл пустой
search-why-image-unsupported = это не картинка в знакомом мне формате
search-why-image-truncated = файл повреждён или обрезан
search-why-image-too-large = картинка слишком большая
search-why-image = формат не подошёл
search-photo-unavailable = Не получилось скачать фото из Telegram. Пришлите его ещё раз.
search-reply-needed = Отправьте /{ $command } ответом на одно из ваших сохранённых фото или на результат поиска.
search-not-yours = Этого нет в вашей коллекции. Ответьте /{ $command } на одно из ваших сохранённых фото или на результат поиска.
search-item-gone = Этого элемента уже нет в вашей коллекции.
search-item-not-ready = Этот элемент ещё обрабатывается. Попробуйте через минуту.
search-deleted = Удалено из коллекции: больше не будет находиться. Само сообщение в чате осталось — его можно удалить вручную.
search-expired = Этот поиск устарел. Отправьте запрос ещё раз.
search-loading = Ищу…
search-why-header =
    {""}
    Совпало по тексту:
search-why-line =
    {""}
    { $n }. { $source }: «{ $text }»
search-source-caption = подпись
search-source-ocr = на картинке
search-source-file-name = имя файла
search-source-origin = откуда
search-source-other = текст

## Почти одинаковые картинки (bot/duplicates.py)

duplicates-empty = Похожих друг на друга картинок в коллекции нет. Если новая картинка почти такая же, как уже сохранённая, я оставлю обе и покажу пару здесь.
duplicates-no-more = Больше пар нет.
duplicates-header = <b>Похожие картинки</b>: { $total } { $total ->
        [one] пара
        [few] пары
       *[many] пар
    }. Первая в каждой паре сохранена раньше. Удалите ненужную или оставьте обе.
duplicates-pair = Эти две похожи на { $score }%.
duplicates-pair-unsendable = {" "}(Один из файлов Telegram уже не отдаёт.)
duplicates-delete-first = Удалить 1-ю
duplicates-delete-second = Удалить 2-ю
duplicates-keep = Оставить обе
duplicates-more = Ещё пары ▸
duplicates-more-text = Есть ещё пары.
duplicates-deleted-first = 1-я удалена, 2-я осталась в коллекции.
duplicates-deleted-second = 2-я удалена, 1-я осталась в коллекции.
duplicates-kept = Оставил обе. Эту пару больше не покажу.
duplicates-gone = Этой пары уже нет: одну из картинок удалили или вы уже решили.
duplicates-admins-only = Удалять картинки из общей коллекции группы могут только её админы. Оставить обе может любой.
