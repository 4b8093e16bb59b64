# English texts of the bot: the default language and the fallback for every message.
# Messages are sent with HTML parse mode: markup here is kept as written; values passed in are
# escaped by the caller. Numbers are printed without grouping (1234, not 1,234).
# Plural variants use CLDR categories: [one] [few] [many] *[other] (see the language's rules).

## The language's own name, shown in /settings.
language-name = English

## Errors and the command menu (bot/app.py)

app-error = Something went wrong and I could not handle that. Please try again in a moment.
app-error-short = That did not work, please try again.
app-command-start = What this bot does
app-command-help = How to add pictures and search
app-command-stats = What is in your collection
app-command-similar = Reply to an item: find similar ones
app-command-delete = Reply to an item: delete it
app-command-duplicates = Pictures that look alike: keep or delete
app-command-settings = Results per page, strictness, language
app-command-forget = Delete your whole collection

## The bot's profile descriptions (bot/courtesy.py)

courtesy-description =
    I find pictures in your own photos and videos.

    Send or forward me photos, albums and videos, then describe what you are looking for ("cat on a sofa", "sunset over the sea") or send a photo to find similar ones. In any chat: @{ $bot } and a query.
courtesy-short-description = Finds pictures in your own photos and videos by description or by example.

## Access refused (bot/middlewares.py)

middlewares-not-allowed = This is a private bot and you are not on its list. Ask its owner to add your id { $uid } to ALLOWED_USERS, or run your own copy.

## What happened to the items sent (bot/reports.py)

reports-saved-photo = ✅ Saved.
reports-saved-video = ✅ Video saved: { $frames } { $frames ->
        [one] moment
       *[other] moments
    } to search by.
reports-saved-animation = ✅ GIF saved: { $frames } { $frames ->
        [one] moment
       *[other] moments
    } to search by.
reports-saved-video-note = ✅ Video message saved: { $frames } { $frames ->
        [one] moment
       *[other] moments
    } to search by.
reports-saved-thumbnail = ✅ Saved the cover only: the file is over 20 MB, the most a bot can download from Telegram. { reports-local-server-hint }
reports-near-duplicate = It looks like one you already have, so I kept both. If you don't need the copy, reply to it with /delete.
reports-duplicate = This is already in your collection.
reports-failed = ❌ Not saved: { $reason }
reports-video-progress = ⏳ Processing the video… { $percent }%
reports-video-started = ⏳ Processing the video…
reports-album-progress = ⏳ Saving the album: { $done } of { $total }…
reports-album-saved-all = ✅ Album saved: { $total } { $total ->
        [one] item
       *[other] items
    }.
reports-album-saved-some = Saved { $saved } of { $total } from the album.
reports-album-all-duplicates = Everything in this album ({ $total }) is already in your collection.
reports-batch-progress = ⏳ Saving: { $done } of { $total }…
reports-batch-saved-all = ✅ Saved { $total } { $total ->
        [one] item
       *[other] items
    }.
reports-batch-saved-some = Saved { $saved } of { $total }.
reports-batch-all-duplicates = All { $total } are already in your collection.
reports-resumed-header = After a restart I finished saving what you sent earlier: { $saved } of { $total }.
reports-line-saved = • saved: { $n }
reports-line-duplicate = • already in your collection: { $n }
reports-line-near = • look like ones you already have (kept anyway): { $n }
reports-line-thumbnail = • over 20 MB, only the cover saved: { $n }
reports-line-failed = • not saved ({ $reason }): { $n }
reports-not-media-document = “{ $name }” is neither a picture nor a video, so I can't keep it. Send photos, videos, GIFs or image files, and you can find them later by describing them.
reports-local-server-hint = Whoever runs this bot can lift that limit with a local Bot API server (<code>TELEGRAM_API_BASE</code>, see the README).
reports-reason-image-truncated = damaged file
reports-reason-image-truncated-sentence = the picture is damaged or cut off. Try sending it again.
reports-reason-image-unsupported = unreadable format
reports-reason-image-unsupported-sentence = I can't read this as a picture: the format isn't supported.
reports-reason-image-empty = empty file
reports-reason-image-empty-sentence = the file is empty.
reports-reason-image-too-large = too many pixels
reports-reason-image-too-large-sentence = the picture is too big (more pixels than I accept).
reports-reason-image-too-complex = file too complex
reports-reason-image-too-complex-sentence = this picture would take too long to decode: the file has thousands of needless parts, so it is probably damaged. Send it as an ordinary JPEG or PNG.
reports-reason-video-too-large = frames too large
reports-reason-video-too-large-sentence = the frames of this video or GIF are too big (more pixels than I accept).
reports-reason-video-too-complex = GIF too complex
reports-reason-video-too-complex-sentence = this animation would take too long to decode: the file is unusual or damaged. Send it as a video (MP4).
reports-reason-video-unreadable = unreadable video
reports-reason-video-unreadable-sentence = I couldn't read this video: unknown format or damaged file.
reports-reason-video-empty = no frames
reports-reason-video-empty-sentence = this video has no frames I could read.
reports-reason-file-too-large = over 20 MB
reports-reason-file-too-large-sentence = the file is over 20 MB, the most a bot can download from Telegram. { reports-local-server-hint }
reports-reason-thumbnail-unreadable = unreadable cover
reports-reason-thumbnail-unreadable-sentence = the file is over 20 MB and its cover could not be read. { reports-local-server-hint }
reports-reason-file-gone = file unavailable
reports-reason-file-gone-sentence = Telegram no longer serves this file. Please send it again.
reports-reason-fetch = download failed
reports-reason-fetch-sentence = I couldn't download it from Telegram. Please try later.
reports-reason-quota = collection full
reports-reason-quota-sentence = your collection is full.
reports-reason-not-media = not a picture or video
reports-reason-not-media-sentence = this is neither a picture nor a video.
reports-reason-default = error
reports-reason-default-sentence = something went wrong on my side. Please try again.

## Collection limits (bot/services.py)

quota-items = Your collection is full: { $limit } items is the limit. Delete some (/delete as a reply to an item, or /forget) to add more.
quota-video = Your collection's video limit is { $limit } min. This video does not fit any more.

## Buttons under a result page (bot/sessions.py)

sessions-more = More ▸
sessions-strict = Strict
sessions-loose = Loose
sessions-active = ✓ { $label }

## Commands, settings and unsupported content (bot/handlers/commands.py)

commands-start =
    Hi { $name }! I find pictures in your own photos and videos.

    • Forward or send me photos, albums and videos: I will remember them.
    • Then type what you are looking for, e.g. <i>cat on a sofa</i>, or reply to any message with a photo to find similar ones.
    /help — all the details.
commands-start-inline =
    <b>Search from any chat</b>

    In any chat, type <code>@{ $bot }</code> and a few words, e.g. <code>@{ $bot } cat on a sofa</code>. Matching photos from your collection appear above the keyboard: tap one to send it to that chat.

    Only your own collection is searched, and only you see the list of results. To add pictures, send or forward them to me here.
commands-help =
    <b>How to use me</b>

    <b>Add.</b> Forward or send a photo, an album, a video, a GIF, a video note or an image as a file. I recognise repeats ("already in your collection"). Videos are indexed frame by frame; files over 20 MB only by their thumbnail (full size needs your own Bot API server, see the README).

    <b>Search.</b> Just type what you want, in English or Russian: <i>wedding in a tent</i>, <i>red car at night</i>. I look at the picture and at its text: words in the image (read moments after it is saved), the caption, the file name, the channel it came from.
    • <code>dog -beach</code>: a word with a minus leaves out what matches it.
    • <code>"invoice march"</code>: these words side by side, in this order (any form of a word), in the item's text: in the picture, the caption, the file name. A query of quotes only searches the text alone.
    • <code>2024</code>, <code>march 2024</code>: from that year or month; <code>after:2024-03-01</code>, <code>before:2023</code>: a range of dates.
    • <code>video</code>, <code>gif</code>, <code>photo</code>: only that kind.
    • <code>from:@channel</code>: forwarded from that channel or person.
    • <code>newest</code> (or <code>oldest</code>): sorted by date instead of by match.
    • Combine them: <code>receipt 2024 from:@shop newest</code>. Russian words (после:, от:, видео, сначала новые) work too.
    • A photo sent as a reply to any message searches by example (that photo is not stored).
    • A photo whose caption starts with "?" searches by photo and text together: <i>?like this but in winter</i>.
    • /similar as a reply to one of your items or results finds its neighbours.
    • /delete as a reply to an item or a result deletes it.
    • Buttons under results: More, stricter / looser.

    <b>In any chat:</b> type <code>@{ $bot } query</code> to pick one of your photos.

    <b>Commands:</b> /stats — what is in your collection; /duplicates — pictures that look alike, keep or delete one; /settings — results per page, strictness, language; /forget — delete everything.

    <b>Privacy.</b> Only you can see your items (in a group, the group shares one collection, and only its admins can delete a look-alike or /forget it). I keep Telegram file ids and search vectors, not the files themselves. /forget deletes everything for good.
commands-stats-empty =
    Your collection is empty. Forward me some photos or videos to start.

    Models: { $models }
commands-stats =
    <b>Your collection</b>: { $total } { $total ->
        [one] item
       *[other] items
    }
    { $kinds }
    Indexed from a thumbnail only (file over the limit): { $thumbs }
    Searchable pictures and video frames: { $units }
    Index: { $index }
    { $queue }Models: { $models }
commands-stats-queue =
    Still being processed: { $n }
    {""}
commands-stats-failed =
    Could not be read: { $n }
    {""}
commands-forget-empty = Your collection is already empty.
commands-forget-ask = Delete your whole collection ({ $n } { $n ->
        [one] item
       *[other] items
    }) and settings? This cannot be undone.
commands-forget-admins-only = Only the group's admins can delete the group's collection.
commands-forget-yes = Yes, delete everything
commands-forget-no = Cancel
commands-forget-done = Done: { $n } { $n ->
        [one] item
       *[other] items
    } deleted. Your collection is empty.
commands-forget-cancelled = Cancelled, nothing was deleted.
commands-forget-invalid = This button is no longer valid. Send /forget again.
commands-settings =
    <b>Settings</b>
    Results per page: { $page }
    Strictness: { $strictness }. Stricter shows only the closest matches, looser shows more.
    Language: { $language }
commands-strictness-strict = strict
commands-strictness-normal = normal
commands-strictness-loose = loose
commands-saved = Saved
commands-button-invalid = This button is no longer valid.
commands-button-stale = This message is too old. Send the command again.
commands-unsupported-sticker = I do not keep stickers. To add a picture, send it as a photo.
commands-unsupported-audio = I search pictures, and voice messages or audio have none. Send photos or videos.
commands-unsupported-document = This file is not a picture or a video ({ $name }). I keep photos, videos and image files (JPEG, PNG, WebP, GIF...).
commands-unsupported-command = I do not know that command. See /help.
commands-unsupported-text = Search is not available right now. Please try later.
commands-unsupported = I cannot keep this. Send a photo, an album, a video or an image file, then search with words. More in /help.
commands-kind-photo = { $n } { $n ->
        [one] photo
       *[other] photos
    }
commands-kind-video = { $n } { $n ->
        [one] video
       *[other] videos
    }
commands-kind-animation = { $n } { $n ->
        [one] GIF
       *[other] GIFs
    }
commands-kind-video-note = { $n } { $n ->
        [one] video note
       *[other] video notes
    }
commands-kind-document = { $n } { $n ->
        [one] image file
       *[other] image files
    }
commands-size = { $value } { $unit ->
        [kb] KB
        [mb] MB
        [gb] GB
       *[b] B
    }

## Inline mode (bot/handlers/inline.py)

inline-video = Video { $duration }
inline-document = Image file
inline-add-photos = Add photos to your collection
inline-nothing = Nothing found — open the bot

## Search answers (bot/handlers/search.py)

search-summary = Found <b>{ $total }</b> in { $ms } ms
search-range = {""} · showing { $first }–{ $last }
search-excluded =
    {""}
    Leaving out: { $terms }
search-skipped =
    {""}
    { $n } { $n ->
        [one] item
       *[other] items
    } could not be sent: Telegram no longer knows those files (forward them again).
search-no-match = Nothing matched “{ $query }”. Try rephrasing: describe what is in the picture (objects, colours, the place), shorter or in other words.
search-no-match-photo = Nothing similar found. Try another photo, or describe the picture in words.
search-empty = Your collection is empty so far: forward me photos, albums or videos and I will find them by description.
search-similar-alone = There is nothing else to compare it with yet: add more photos.
search-past-end = No more results.
search-only-exclusions = The query only says what to leave out ({ $terms }). Say what to look for too, e.g. “cat on a sofa -dog”.
search-empty-query = Describe the picture in words, e.g. “sunset over the sea”.
search-bad-photo = Could not read this picture: { $why }. Try another one.
search-why-image-empty = the file is empty
search-why-image-unsupported = it is not a picture format I can read
search-why-image-truncated = the file is damaged or cut short
search-why-image-too-large = the picture is too large
search-why-image = the format did not work
search-photo-unavailable = Could not download the photo from Telegram. Please send it again.
search-reply-needed = Send /{ $command } as a reply to one of your saved photos or to a search result.
search-not-yours = That is not in your collection. Reply /{ $command } to one of your saved photos or to a search result.
search-item-gone = That item is no longer in your collection.
search-item-not-ready = That item is still being processed. Try again in a minute.
search-deleted = Deleted from your collection: it will not be found again. The message itself stays in the chat; delete it by hand if you like.
search-expired = This search has expired. Please send it again.
search-loading = Searching…
search-why-header =
    {""}
    Matched by text:
search-why-line =
    {""}
    { $n }. { $source }: «{ $text }»
search-source-caption = caption
search-source-ocr = in the picture
search-source-file-name = file name
search-source-origin = from
search-source-other = text

## Near-duplicates (bot/duplicates.py)

duplicates-empty = No look-alikes in your collection. When a new picture looks almost the same as one you already have, I keep both and list the pair here.
duplicates-no-more = No more pairs.
duplicates-header = <b>Look-alikes</b>: { $total } { $total ->
        [one] pair
       *[other] pairs
    }. The 1st of each pair was saved first. Delete the one you don't need, or keep both.
duplicates-pair = These two look { $score }% alike.
duplicates-pair-unsendable = {" "}(Telegram no longer knows one of the files.)
duplicates-delete-first = Delete 1st
duplicates-delete-second = Delete 2nd
duplicates-keep = Keep both
duplicates-more = More pairs ▸
duplicates-more-text = There are more pairs.
duplicates-deleted-first = Deleted the 1st; the 2nd stays in your collection.
duplicates-deleted-second = Deleted the 2nd; the 1st stays in your collection.
duplicates-kept = Kept both. I won't show this pair again.
duplicates-gone = This pair is no longer there: one of them was deleted, or you already decided.
duplicates-admins-only = Only the group's admins can delete pictures from the group's collection. Anyone can keep both.
