#!/usr/bin/env python3
"""Build the tiny Gemma-4-shaped test tokenizer in resources/tokenizers/tiny-tokenizer/.

The tokenizer is a byte-fallback BPE model with exactly 4096 entries, trained
here on a small multilingual corpus that is written out in full below (every
sentence was written for this project).  The JSON files mirror the structure
of Google's Gemma tokenizer.json / tokenizer_config.json (Hugging Face
`tokenizers` format) so that code which loads real Gemma 4 tokenizers can be
tested on a file small enough to ship in the repository.  No vocabulary,
merges or other data from Google's tokenizer are used.

Standard library only, deterministic: running it twice gives byte-identical
files.  Usage:

    python3 tools/make_test_tokenizer.py [--out DIR]
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
import sys
from collections import Counter
from pathlib import Path

SP = "\u2581"  # "▁", what the normalizer turns a space into
VOCAB_SIZE = 4096
MAX_NEWLINE_RUN = 31  # ids 107..137: "\n" * 1..31
MAX_SPACE_RUN = 101  # ids 138..237: "▁" * 2..101
SPLIT_ALL_UP_TO = 31  # whitespace runs up to this length get every split as a merge
FIRST_BYTE_ID = 238
FIRST_LEARNED_ID = FIRST_BYTE_ID + 256  # 494
MEDIA_TOKENS = ["<|image>", "<|audio>", "<|image|>", "<|audio|>", "<image|>", "<audio|>", "<|video|>"]
FIRST_MEDIA_ID = VOCAB_SIZE - len(MEDIA_TOKENS)  # 4089
DIGITS = set("0123456789")

# Ids 0..106: control tokens, tool/channel/turn markers, and <unusedN> fillers.
CONTROL_TOKENS = {
    0: "<pad>",
    1: "<eos>",
    2: "<bos>",
    3: "<unk>",
    4: "<mask>",
    5: "[multimodal]",
    46: "<|tool>",
    47: "<tool|>",
    48: "<|tool_call>",
    49: "<tool_call|>",
    50: "<|tool_response>",
    51: "<tool_response|>",
    52: '<|"|>',
    98: "<|think|>",
    100: "<|channel>",
    101: "<channel|>",
    105: "<|turn>",
    106: "<turn|>",
}
# Like Google's file: <mask>, [multimodal], <unusedN> and the whitespace runs are
# added tokens with special=false; everything else in CONTROL_TOKENS and the
# media tokens are special=true.  Byte tokens are plain vocabulary entries.
NOT_SPECIAL = {"<mask>", "[multimodal]"}


# ---------------------------------------------------------------------------
# Corpus.  Every line below was written for this file.  Sections are
# (label, text); labels are only used for the statistics printed at the end.
# ---------------------------------------------------------------------------

ENGLISH = """\
The small town woke up slowly on Monday morning. The baker opened his shop at six o'clock, and the smell of fresh bread drifted along the main street. A few children walked to school with heavy bags on their backs, talking about the football match they had played the day before. An old man sat on a bench near the fountain and fed the pigeons with crumbs from his pocket. The weather was cool and bright, and the sky over the hills was a clear, pale blue.

At the corner of the market square there is a small library. It has three rooms, two large windows and a wooden staircase that creaks when you climb it. The librarian knows almost every visitor by name. She recommends novels to the teenagers, history books to the retired teachers, and picture books to the youngest readers. On Thursday evenings she reads stories aloud, and the room is always full.

How to bake a simple loaf of bread: mix five hundred grams of flour with ten grams of salt and seven grams of dry yeast. Add three hundred and fifty millilitres of warm water and stir until the dough comes together. Knead it on a floured table for ten minutes, until it feels smooth and elastic. Put the dough in a bowl, cover it with a clean towel, and let it rise for about an hour. Then shape it into a loaf, place it on a baking tray, and let it rise again for thirty minutes. Bake it in a hot oven for thirty five minutes, until the crust is golden brown and the bottom sounds hollow when you tap it. Let the bread cool before you cut it.

Large language models are often too big for small computers and phones. A model with billions of parameters needs many gigabytes of memory, and every generated token requires a lot of arithmetic. There are several ways to make a model smaller. Quantization stores each weight with fewer bits. Pruning removes weights, neurons or whole layers that contribute little to the output. Distillation trains a small student model to imitate a larger teacher model. Vocabulary trimming removes tokens that a particular application never uses, which shrinks the embedding table and the output layer. Each method trades a little quality for a lot of speed, and the best results usually come from combining them carefully and measuring the quality after every step.

A tokenizer turns text into a sequence of integer ids. The model never sees letters or words directly; it only sees these ids. A good tokenizer keeps common words as single tokens and splits rare words into smaller pieces. When a character is not in the vocabulary at all, a byte fallback tokenizer writes it as a sequence of bytes, so that no text is ever lost. Decoding reverses the process: the ids are turned back into pieces, the pieces are joined, and the bytes are decoded as UTF-8.

The train left the station at a quarter past eight. Through the window I watched the city disappear: first the tall office buildings, then the warehouses and the railway yards, and finally the quiet suburbs with their gardens and garages. After an hour the landscape changed completely. There were fields of wheat and barley, small forests, rivers with stone bridges, and villages with white churches. The conductor checked our tickets and wished everyone a pleasant journey. A woman across the aisle was knitting a green scarf, and a student next to her was reading a thick book about mathematics. I drank a cup of tea and tried to write a letter to my sister, but the train was shaking too much, so I gave up and simply enjoyed the view.

Gardening is a patient hobby. In early spring you prepare the soil, remove the weeds and add compost. Then you plant seeds of carrots, beans, lettuce and tomatoes. Water them regularly, but not too much, because wet roots can rot. Tomatoes need a lot of sunshine and a stick to climb on. Beans grow quickly and can be picked every few days in summer. By the end of the season the garden is full of colours: red tomatoes, orange carrots, green beans and yellow flowers that attract bees and butterflies.

"Could you help me with this problem?" asked the student.
"Of course," said the teacher. "What is the question?"
"I don't understand why the program is so slow."
"Let's measure it first. Which function takes the most time?"
"I think it's the loop that reads the file line by line."
"Then we should read the whole file at once and process it in memory. Try it and tell me what happens."
A few minutes later the student smiled. "It's ten times faster now!"

The weather forecast for the weekend: on Saturday morning there will be light rain in the north and some sunshine in the south. In the afternoon the clouds will clear and temperatures will reach about twenty degrees. On Sunday it will be warm and dry everywhere, with a gentle wind from the west. Next week may bring thunderstorms, so keep an umbrella nearby.

To install the software, download the latest release, unpack the archive into a folder of your choice, and open a terminal in that folder. Run the build command and wait until it finishes. If the build fails, read the error message carefully: it usually tells you which library is missing or which file could not be found. Install the missing library, run the build again, and then run the tests. When all tests pass, the program is ready to use. Read the documentation before you change the configuration, and always keep a backup of your data.

History is full of surprising connections. The paper that we write on was invented in China and reached Europe many centuries later. The numbers that we use every day came to Europe from India through the Arab world. Coffee was first drunk in Ethiopia and Yemen before it spread to Turkey, Italy and the rest of the world. Every language borrows words from its neighbours, and every culture learns from the others. Translation is one of the oldest professions, and good translators are still needed today, even with modern software.

My grandmother used to say that the best way to learn something is to teach it to someone else. When you explain an idea, you discover which parts you really understand and which parts you only remember. She was a mathematics teacher for forty years, and she still solves a puzzle from the newspaper every morning before breakfast. Her kitchen is full of books, plants and old photographs, and she always has a pot of soup ready for unexpected visitors.

The museum opens at ten o'clock in the morning and closes at six in the evening. Tickets for adults cost twelve euros, students pay eight euros, and children under twelve enter for free. The first floor shows paintings and sculptures from the last three centuries. The second floor is dedicated to science and technology, with old clocks, telescopes, printing presses and the first computers. Guided tours start every hour from the main entrance.

Please remember to save your work before you close the editor. If the computer crashes, unsaved changes will be lost. It is also a good idea to commit your changes often, write short and clear commit messages, and run the tests before you share your code with other people. Small steps are easier to review, easier to test, and easier to undo when something goes wrong.

Every evening the lighthouse keeper climbed the narrow stairs to light the lamp. For more than twenty years he had watched the ships pass by the rocky coast. In winter the storms were so strong that the waves reached the windows of his little house. He kept a diary of every ship he saw, the direction of the wind, and the colour of the sea. Now the lighthouse works automatically, and his diaries are kept in the town museum, where visitors can read about the storms, the ships and the long quiet nights.

Every morning I get up at seven o'clock, drink a cup of tea and ride my bicycle to work. The office is not far from my home, and the ride takes about fifteen minutes. At work I write programs and test new models. In the afternoon our team meets to discuss the results of the day. In the evening I cook dinner and read books, and sometimes I study a new language for half an hour.

Memory is one of the most important resources of a computer. When a program loads a model, it reads the weights from the disk into memory. If the model is larger than the available memory, the program either fails or becomes very slow, because it has to move data back and forth. That is why smaller models are so useful: they start faster, they run on cheaper hardware, and they leave room for other programs.

A good soup needs time. Start by cutting an onion, two carrots and a stick of celery into small pieces. Fry them gently in olive oil until they are soft. Add potatoes, a handful of lentils, a bay leaf and enough water or stock to cover everything. Let the soup simmer for forty minutes, then season it with salt, pepper and a little lemon juice. Serve it hot with a slice of fresh bread.

The city has built new bicycle lanes along the river. On weekends families ride slowly along the water, stopping at small cafés and playgrounds. During the week the lanes are busy with people riding to work, students riding to the university, and couriers delivering parcels. The air is cleaner than it was ten years ago, and the streets are quieter.
"""

GERMAN = """\
Heute ist das Wetter wunderbar. Am Morgen bin ich mit dem Zug in die Berge gefahren. Die Fahrt dauerte ungefähr zwei Stunden, und ich habe die ganze Zeit aus dem Fenster geschaut. Die Wiesen waren grün, und auf den Gipfeln lag noch ein wenig Schnee. Im Dorf habe ich eine Tasse Kaffee getrunken und ein Stück Apfelkuchen gegessen. Danach bin ich zu einem kleinen See gewandert. Das Wasser war kalt und klar. Am Abend bin ich müde, aber glücklich nach Hause zurückgekehrt.
Die deutsche Sprache hat sehr lange Wörter, zum Beispiel Straßenbahnhaltestelle oder Geschwindigkeitsbegrenzung. Größe, Übung, Ärger und Öffnungszeiten sind Wörter mit Umlauten. Wir möchten, dass das kleine Modell auch deutsche Texte gut versteht und schnell verarbeitet.
Jeden Morgen stehe ich um sieben Uhr auf, trinke einen Tee und fahre mit dem Fahrrad zur Arbeit. Bei der Arbeit schreibe ich Programme und teste neue Modelle. Am Abend koche ich und lese Bücher.
"""

FRENCH = """\
Aujourd'hui, il fait très beau. Ce matin, je suis allé au marché pour acheter du pain, du fromage et des fruits. Le marché était plein de monde et les marchands parlaient fort. Ensuite, j'ai pris un café avec une amie dans une petite brasserie près de la gare. Nous avons parlé de nos vacances, de nos livres préférés et de la cuisine française.
L'après-midi, je suis allé à la bibliothèque pour lire un roman. Le soir, j'ai préparé une soupe aux légumes et une tarte aux pommes. Paris est la capitale de la France, mais Lyon et Marseille sont aussi de très belles villes. Où est la gare ? Ça coûte combien ? Voilà, c'est déjà fini, et l'été arrive bientôt.
Chaque matin, je me lève à sept heures, je bois un thé et je vais au travail à vélo. Au travail, j'écris des programmes et je teste de nouveaux modèles. Le soir, je cuisine et je lis des livres.
"""

SPANISH = """\
Hoy hace un día precioso. Por la mañana fui al mercado y compré pan, queso y fruta. El mercado estaba lleno de gente y los vendedores hablaban en voz alta. Después tomé un café con un amigo en una pequeña cafetería cerca de la plaza. Hablamos de nuestras vacaciones, de los libros que nos gustan y de la comida española.
Por la tarde fui a la biblioteca y leí una novela. Por la noche preparé una sopa de verduras y una tortilla de patatas. Madrid es la capital de España, pero Barcelona y Sevilla también son ciudades muy bonitas. ¿Dónde está la estación? ¡Qué bueno! El niño pequeño dijo: «mañana iremos a la montaña».
Cada mañana me levanto a las siete, tomo un té y voy al trabajo en bicicleta. En el trabajo escribo programas y pruebo modelos nuevos. Por la noche cocino y leo libros.
"""

POLISH = """\
Dzisiaj jest piękna pogoda. Rano poszedłem na targ i kupiłem chleb, owoce i warzywa. Na targu było dużo ludzi. Potem usiadłem w kawiarni z przyjaciółką i rozmawialiśmy o pracy i o studiach. Język polski ma wiele trudnych słów, na przykład źdźbło albo chrząszcz.
Warszawa jest stolicą Polski, a Kraków to piękne, stare miasto nad Wisłą. Wieczorem czytałem książkę o historii nauki. Jutro pojadę pociągiem do Gdańska, żeby zobaczyć morze.
Każdego ranka wstaję o siódmej, piję herbatę i jadę do pracy rowerem. W pracy piszę programy i testuję nowe modele. Wieczorem gotuję kolację i czytam książki.
"""

RUSSIAN = """\
Утром я проснулся рано и открыл окно. На улице было тихо, только птицы пели на деревьях. Я сварил кофе, сел за стол и начал читать новую книгу о путешествиях по Сибири. Автор рассказывает о длинной железной дороге, о маленьких станциях и о людях, которые живут далеко от больших городов. Зимой там очень холодно, а летом солнце почти не заходит.
Мне нравится читать о местах, где я никогда не был. Может быть, когда-нибудь я тоже поеду туда на поезде. Москва — столица России, а Санкт-Петербург называют северной столицей. В библиотеке много книг, журналов и старых карт. Маленькая модель должна понимать русский язык так же хорошо, как английский.
Каждое утро я встаю в семь часов, пью чай и еду на работу на велосипеде. На работе я пишу программы и проверяю новые модели. Вечером я готовлю ужин и читаю книги. По выходным мы с семьёй гуляем в парке или ходим в библиотеку.
"""

GREEK = """\
Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. Κάθε πρωί πίνω έναν καφέ και διαβάζω την εφημερίδα. Το καλοκαίρι πηγαίνουμε στη θάλασσα με την οικογένεια. Η θάλασσα είναι ζεστή και καθαρή, και τα παιδιά παίζουν στην άμμο.
Το βράδυ τρώμε ψάρι, σαλάτα και ψωμί σε μια μικρή ταβέρνα κοντά στο λιμάνι. Οι άνθρωποι μιλούν, γελούν και ακούν μουσική μέχρι αργά. Η γλώσσα μας έχει μεγάλη ιστορία και πολλές λέξεις της χρησιμοποιούνται σε άλλες γλώσσες.
Κάθε πρωί ξυπνάω στις επτά, πίνω τσάι και πηγαίνω στη δουλειά με το ποδήλατο. Στη δουλειά γράφω προγράμματα και δοκιμάζω νέα μοντέλα. Το βράδυ μαγειρεύω και διαβάζω βιβλία.
"""

CHINESE = """\
今天天气很好，我们去公园散步。公园里有很多人，有的人在跑步，有的人在打太极拳，还有孩子们在放风筝。我喜欢坐在湖边的长椅上看书。这本书讲的是一个年轻人学习做饭的故事。他每天早上去市场买新鲜的蔬菜和水果，然后回家做饭给家人吃。
中文是世界上使用人数最多的语言之一。学习中文需要时间和耐心，但是非常有意思。机器学习模型也需要学习很多语言，才能更好地理解人们说的话。我们的模型很小，但是它可以处理中文、英文和其他语言。北京是中国的首都，上海是一个很大的城市。
我每天早上七点起床，先喝一杯茶，然后去公司上班。公司离我家不远，我喜欢骑自行车去。中午我和同事们一起吃饭，我们常常讨论工作和生活。下午我要写很多代码，也要测试新的模型。晚上回家以后，我做饭、看书，有时候也学习新的语言。周末的时候，我们全家去公园散步，或者去图书馆看书。我觉得学习语言和学习编程一样，都需要每天练习。
"""

JAPANESE = """\
今日はとても良い天気です。朝ごはんを食べてから、駅まで歩きました。電車に乗って、東京の図書館へ行きました。図書館にはたくさんの本があります。私は日本の歴史についての本を読みました。昼ごはんはラーメンを食べました。とてもおいしかったです。
午後は友達とカフェでコーヒーを飲みながら、プログラミングの話をしました。友達はコンピューターの会社で働いています。新しいモデルを小さくする方法について、いろいろ教えてくれました。夜は家に帰って、日記を書きました。ひらがなとカタカナと漢字を使って書くのは、少し難しいですが、楽しいです。
毎朝七時に起きて、お茶を飲んでから会社へ行きます。会社は家から近いので、自転車で行きます。昼ごはんは同僚と一緒に食べます。午後はプログラムを書いたり、新しいモデルをテストしたりします。夜は家で料理をして、本を読みます。週末は家族と公園を散歩したり、図書館で本を読んだりします。言葉を勉強することは、プログラミングを勉強することと同じで、毎日の練習が大切です。
"""

KOREAN = """\
오늘은 날씨가 정말 좋습니다. 아침에 일찍 일어나서 공원에서 산책을 했습니다. 공원에는 사람들이 많이 있었습니다. 점심에는 친구와 함께 김치찌개를 먹었습니다. 오후에는 도서관에 가서 책을 읽었습니다.
저는 한국어를 공부하고 있습니다. 한국어는 배우기 어렵지만 아주 재미있습니다. 서울은 한국의 수도이고, 부산은 바다가 아름다운 도시입니다. 저녁에는 가족과 함께 영화를 보았습니다. 내일은 기차를 타고 부산에 갈 것입니다.
저는 매일 아침 일곱 시에 일어납니다. 먼저 차를 한 잔 마시고 회사에 갑니다. 회사는 집에서 가까워서 자전거를 타고 갑니다. 점심에는 동료들과 함께 밥을 먹습니다. 오후에는 코드를 쓰고 새로운 모델을 테스트합니다. 저녁에는 집에서 요리를 하고 책을 읽습니다. 주말에는 가족과 함께 공원에서 산책을 합니다. 언어를 배우는 것은 프로그래밍을 배우는 것과 같아서 매일 연습하는 것이 중요합니다.
"""

ARABIC = """\
اليوم الجو جميل جدا. ذهبت في الصباح إلى السوق واشتريت الخبز والفواكه والخضروات. السوق مزدحم دائما في يوم الجمعة. بعد ذلك جلست في المقهى مع صديقي وشربنا القهوة وتحدثنا عن العمل والدراسة.
اللغة العربية لغة جميلة ولها تاريخ طويل. يكتب الناس بالعربية من اليمين إلى اليسار. القاهرة مدينة كبيرة، وفيها نهر النيل. في المساء قرأت كتابا عن تاريخ العلوم.
كل صباح أستيقظ في الساعة السابعة وأشرب الشاي ثم أذهب إلى العمل بالدراجة. في العمل أكتب البرامج وأختبر النماذج الجديدة. في المساء أطبخ العشاء وأقرأ الكتب.
"""

HEBREW = """\
היום מזג האוויר נעים מאוד. בבוקר הלכתי לשוק וקניתי לחם, פירות וירקות. אחר כך ישבתי בבית קפה עם חברה ודיברנו על העבודה ועל הלימודים.
עברית נכתבת מימין לשמאל. ירושלים היא עיר עתיקה ויפה, ותל אביב היא עיר על חוף הים. בערב קראתי ספר על ההיסטוריה של המדע.
כל בוקר אני קם בשבע, שותה תה ונוסע לעבודה באופניים. בעבודה אני כותב תוכניות ובודק מודלים חדשים. בערב אני מבשל ארוחת ערב וקורא ספרים.
"""

HINDI = """\
आज मौसम बहुत अच्छा है। सुबह मैं बाज़ार गया और फल, सब्ज़ियाँ और रोटी खरीदी। बाज़ार में बहुत लोग थे। उसके बाद मैंने अपने दोस्त के साथ चाय पी और हमने काम और पढ़ाई के बारे में बात की।
हिंदी भारत की एक प्रमुख भाषा है और इसे देवनागरी लिपि में लिखा जाता है। दिल्ली भारत की राजधानी है। शाम को मैंने विज्ञान के इतिहास के बारे में एक किताब पढ़ी। मुझे नई भाषाएँ सीखना बहुत पसंद है।
मैं हर सुबह सात बजे उठता हूँ, चाय पीता हूँ और साइकिल से दफ़्तर जाता हूँ। दफ़्तर में मैं प्रोग्राम लिखता हूँ और नए मॉडल की जाँच करता हूँ। शाम को मैं खाना बनाता हूँ और किताबें पढ़ता हूँ।
"""

THAI = """\
วันนี้อากาศดีมาก ตอนเช้าฉันไปตลาดและซื้อผลไม้ ผัก และขนมปัง ตลาดมีคนเยอะมาก หลังจากนั้นฉันนั่งดื่มกาแฟกับเพื่อนที่ร้านกาแฟ เราคุยกันเรื่องงานและการเรียน
ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ กรุงเทพเป็นเมืองหลวงของประเทศไทย ตอนเย็นฉันอ่านหนังสือเกี่ยวกับประวัติศาสตร์ของวิทยาศาสตร์ ฉันชอบเรียนภาษาใหม่ ๆ
ทุกเช้าฉันตื่นนอนตอนเจ็ดโมง ดื่มชา แล้วขี่จักรยานไปทำงาน ที่ทำงานฉันเขียนโปรแกรมและทดสอบโมเดลใหม่ ตอนเย็นฉันทำอาหารและอ่านหนังสือ
"""

EMOJI = """\
I love pizza 🍕 and coffee ☕ in the morning. Great job! 👍 🎉 The weather is sunny ☀️ today, maybe rain 🌧️ later.
Family 👨‍👩‍👧 and friends 🤝 at the party 🎂. Flags: 🇩🇪 🇫🇷 🇯🇵 🇰🇷. Hearts ❤️ 💙 💚. Faces 😀 😂 🤔 😴. Rocket 🚀, snake 🐍, crab 🦀, cat 🐱, dog 🐶.
"""

DIGITS_PUNCT = """\
Version 1.2.3 was released on 2024-05-17 at 09:30 UTC; version 1.2.4 followed on 2024-06-02.
Prices: $19.99, €25, £7.50, ¥1200. Pi ≈ 3.14159 and e ≈ 2.71828. 50% off! 100 × 12 = 1200; 7 ÷ 2 = 3.5; 2^10 = 1024.
Phone: +1 (555) 012-3456. Mail: test@example.com. Path: /usr/local/bin and C:\\Users\\test. Range 0–9, “quotes”, ‘single’, ellipsis…
ASCII: ! " # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \\ ] ^ _ ` { | } ~
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 32 64 128 256 512 1024 2048 4096 65536.
"""

CPP_CODE = """\
#include <cstdint>
#include <string>
#include <vector>

namespace whittle {

struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    std::size_t offset = 0;
};

// Returns the number of elements in a tensor.
int64_t element_count(const Tensor& t) {
    int64_t n = 1;
    for (int64_t d : t.shape) {
        n *= d;
    }
    return n;
}

}  // namespace whittle
"""

PYTHON_CODE = """\
def count_tokens(lines: list[str]) -> dict[str, int]:
    \"\"\"Count how often each token appears.\"\"\"
    counts: dict[str, int] = {}
    for line in lines:
        for token in line.split():
            counts[token] = counts.get(token, 0) + 1
    return counts


if __name__ == "__main__":
    print(count_tokens(["hello world", "hello there"]))
"""

CORPUS: list[tuple[str, str]] = [
    ("English", ENGLISH),
    ("German", GERMAN),
    ("French", FRENCH),
    ("Spanish", SPANISH),
    ("Polish", POLISH),
    ("Russian", RUSSIAN),
    ("Greek", GREEK),
    ("Chinese", CHINESE),
    ("Japanese", JAPANESE),
    ("Korean", KOREAN),
    ("Arabic", ARABIC),
    ("Hebrew", HEBREW),
    ("Hindi", HINDI),
    ("Thai", THAI),
    ("Emoji", EMOJI),
    ("Digits/punctuation", DIGITS_PUNCT),
    ("C++", CPP_CODE),
    ("Python", PYTHON_CODE),
]


# ---------------------------------------------------------------------------
# Vocabulary layout
# ---------------------------------------------------------------------------


def fixed_prefix() -> list[tuple[str, bool]]:
    """Ids 0..237 as (content, special).  All of them are added tokens."""
    entries: list[tuple[str, bool]] = []
    unused = 0
    for i in range(107):
        if i in CONTROL_TOKENS:
            content = CONTROL_TOKENS[i]
            entries.append((content, content not in NOT_SPECIAL))
        else:
            entries.append((f"<unused{unused}>", False))
            unused += 1
    for n in range(1, MAX_NEWLINE_RUN + 1):
        entries.append(("\n" * n, False))
    for n in range(2, MAX_SPACE_RUN + 1):
        entries.append((SP * n, False))
    assert len(entries) == FIRST_BYTE_ID, len(entries)
    return entries


def whitespace_merges() -> list[tuple[str, str]]:
    """Merges that build newline runs and "▁" runs, ranked before learned merges.

    Like Google's file: every split (a, b) with a >= b of each run up to
    SPLIT_ALL_UP_TO characters, ordered by the length of the left part, then
    the right part, longest first, newline and "▁" interleaved.  Longer "▁"
    runs (up to MAX_SPACE_RUN) are reached through (run[n-1], "▁") merges
    ranked above all of those, so a run of spaces always becomes one token.
    """
    merges: list[tuple[str, str]] = []
    for left in range(MAX_SPACE_RUN - 1, SPLIT_ALL_UP_TO - 1, -1):
        merges.append((SP * left, SP))
    for left in range(SPLIT_ALL_UP_TO - 1, 0, -1):
        for right in range(min(left, SPLIT_ALL_UP_TO - left), 0, -1):
            if left + right <= MAX_NEWLINE_RUN:
                merges.append(("\n" * left, "\n" * right))
            if left + right <= MAX_SPACE_RUN:
                merges.append((SP * left, SP * right))
    return merges


# ---------------------------------------------------------------------------
# BPE training
# ---------------------------------------------------------------------------

PIECE_RE = re.compile(SP + "{2,}|" + SP + "?[^" + SP + "]+|" + SP)


def corpus_words() -> Counter[str]:
    """Word frequencies as the model sees text after normalization.

    Spaces become "▁" (no prefix space is added).  A single "▁" belongs to the
    word after it; runs of two or more "▁" are whitespace tokens of their own
    (the whitespace merges outrank everything), so they are not trained on.
    Newlines are added tokens, so nothing is ever merged across them.
    """
    words: Counter[str] = Counter()
    for _, text in CORPUS:
        for line in text.split("\n"):
            for piece in PIECE_RE.findall(line.replace(" ", SP)):
                if len(piece) >= 2 and set(piece) == {SP}:
                    continue
                words[piece] += 1
    return words


def mergeable(a: str, b: str) -> bool:
    # Gemma keeps every digit a token of its own: never merge digits.
    return not (DIGITS & set(a) or DIGITS & set(b))


def train_bpe(words: Counter[str], known: set[str], new_tokens: int) -> list[tuple[str, str]]:
    """Classic BPE: repeatedly merge the most frequent adjacent pair.

    Stops once the merges have produced `new_tokens` strings that are not in
    `known` (two merges can produce the same string).  Ties between equally
    frequent pairs go to the shorter merged string, then to code point order
    (the length rule spreads the rarer merges over all scripts instead of
    favouring Latin); the result is deterministic.
    """
    word_syms: list[list[str]] = []
    word_freq: list[int] = []
    for w in sorted(words):
        word_syms.append(list(w))
        word_freq.append(words[w])

    pair_count: dict[tuple[str, str], int] = {}
    pair_words: dict[tuple[str, str], set[int]] = {}
    for wi, syms in enumerate(word_syms):
        for p in zip(syms, syms[1:]):
            if mergeable(*p):
                pair_count[p] = pair_count.get(p, 0) + word_freq[wi]
                pair_words.setdefault(p, set()).add(wi)

    heap = [(-c, len(p[0]) + len(p[1]), p[0], p[1]) for p, c in pair_count.items()]
    heapq.heapify(heap)

    seen = set(known)
    merges: list[tuple[str, str]] = []
    done: set[tuple[str, str]] = set()
    made = 0
    while made < new_tokens:
        if not heap:
            raise SystemExit(f"corpus too small: only {made} of {new_tokens} tokens could be learned")
        neg, _, a, b = heapq.heappop(heap)
        pair = (a, b)
        if pair_count.get(pair, 0) != -neg or -neg <= 0 or pair in done:
            continue  # stale heap entry, or a pair that re-formed after its merge
        done.add(pair)
        merges.append(pair)
        merged = a + b
        if merged not in seen:
            seen.add(merged)
            made += 1
        changed: dict[tuple[str, str], int] = {}
        for wi in sorted(pair_words.pop(pair, ())):
            syms = word_syms[wi]
            freq = word_freq[wi]
            for p in zip(syms, syms[1:]):
                if mergeable(*p):
                    changed[p] = changed.get(p, 0) - freq
            out: list[str] = []
            i = 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            word_syms[wi] = out
            for p in zip(out, out[1:]):
                if mergeable(*p):
                    changed[p] = changed.get(p, 0) + freq
                    pair_words.setdefault(p, set()).add(wi)
        del pair_count[pair]
        changed.pop(pair, None)
        for p, delta in changed.items():
            if delta == 0:
                continue
            c = pair_count.get(p, 0) + delta
            if c > 0:
                pair_count[p] = c
                heapq.heappush(heap, (-c, len(p[0]) + len(p[1]), p[0], p[1]))
            else:
                pair_count.pop(p, None)
                pair_words.pop(p, None)
    return merges


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def added_token(i: int, content: str, special: bool) -> dict:
    return {
        "id": i,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def build() -> tuple[dict, dict, dict]:
    prefix = fixed_prefix()
    vocab: dict[str, int] = {}
    added: list[dict] = []
    for i, (content, special) in enumerate(prefix):
        vocab[content] = i
        added.append(added_token(i, content, special))
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = FIRST_BYTE_ID + byte

    words = corpus_words()
    char_freq: Counter[str] = Counter()
    for w, f in words.items():
        for ch in w:
            char_freq[ch] += f
    chars = sorted(char_freq, key=lambda c: (-char_freq[c], c))
    for ch in chars:
        assert ch not in vocab, repr(ch)
        vocab[ch] = len(vocab)

    # Learn merges until the vocabulary reaches FIRST_MEDIA_ID entries.
    learned = train_bpe(words, set(vocab), FIRST_MEDIA_ID - len(vocab))
    for a, b in learned:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    assert len(vocab) == FIRST_MEDIA_ID, len(vocab)

    for j, content in enumerate(MEDIA_TOKENS):
        vocab[content] = FIRST_MEDIA_ID + j
        added.append(added_token(FIRST_MEDIA_ID + j, content, True))

    merges = whitespace_merges() + learned

    # Sanity checks.
    assert len(vocab) == VOCAB_SIZE, len(vocab)
    assert sorted(vocab.values()) == list(range(VOCAB_SIZE))
    for a, b in merges:
        assert a in vocab and b in vocab and a + b in vocab, (a, b)
    assert len(set(merges)) == len(merges)

    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SP},
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"String": " "},
            "behavior": "MergedWithPrevious",
            "invert": False,
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<bos>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<bos>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<bos>", "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SP}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": dict(sorted(vocab.items(), key=lambda kv: kv[1])),
            "merges": [[a, b] for a, b in merges],
        },
    }

    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "audio_token": "<|audio|>",
        "backend": "tokenizers",
        "boa_token": "<|audio>",
        "boi_token": "<|image>",
        "bos_token": "<bos>",
        "clean_up_tokenization_spaces": False,
        "eoa_token": "<audio|>",
        "eoc_token": "<channel|>",
        "eoi_token": "<image|>",
        "eos_token": "<eos>",
        "eot_token": "<turn|>",
        "escape_token": '<|"|>',
        "etc_token": "<tool_call|>",
        "etd_token": "<tool|>",
        "etr_token": "<tool_response|>",
        "extra_special_tokens": ["<|video|>"],
        "image_token": "<|image|>",
        "mask_token": "<mask>",
        "model_max_length": 131072,
        "pad_token": "<pad>",
        "padding_side": "left",
        "processor_class": "Gemma4Processor",
        "soc_token": "<|channel>",
        "sot_token": "<|turn>",
        "stc_token": "<|tool_call>",
        "std_token": "<|tool>",
        "str_token": "<|tool_response>",
        "think_token": "<|think|>",
        "tokenizer_class": "GemmaTokenizer",
        "unk_token": "<unk>",
    }

    stats = {
        "chars": len(chars),
        "learned_merges": len(learned),
        "whitespace_merges": len(whitespace_merges()),
        "merges": len(merges),
        "corpus_bytes": sum(len(t.encode("utf-8")) for _, t in CORPUS),
    }
    return tokenizer, config, stats


# Our own short template for Gemma 4's chat format.  Role "assistant" is
# written as "model"; every other role (system, user, tool, ...) as itself, so
# a system turn appears only when there is a system message.
CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- for message in messages -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{- '<|turn>' + role + '\\n' -}}
    {%- if message['content'] is string -%}
        {{- message['content'] | trim -}}
    {%- else -%}
        {%- for part in message['content'] -%}
            {%- if part['type'] == 'text' -%}
                {{- part['text'] | trim -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- '<turn|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|turn>model\\n' -}}
{%- endif -%}
"""

README = """\
# tiny-tokenizer

A 4096-entry byte-fallback BPE tokenizer shaped like Gemma 4's, for tests.
Generated by `tools/make_test_tokenizer.py`; do not edit by hand.

- `tokenizer.json`: Hugging Face `tokenizers` format with the same structure
  as Google's Gemma tokenizer.json (Replace " " -> "▁" normalizer, no prefix
  space, Split pre-tokenizer, `<bos>` TemplateProcessing post-processor,
  Replace/ByteFallback/Fuse decoder, BPE model with `byte_fallback: true` and
  merges as `[left, right]` pairs in rank order, `added_tokens` with the same
  flags Google uses).
- `tokenizer_config.json`: special-token names, `add_bos_token`,
  `model_max_length`, `padding_side: left`, like Gemma 4's.
- `chat_template.jinja`: a short template of our own for Gemma 4's chat
  format (`<bos>`, then `<|turn>ROLE\\n...<turn|>\\n` per message with
  "assistant" written as "model", generation prompt `<|turn>model\\n`).

Layout of the ids:

| ids | entries |
| --- | --- |
| 0-5 | `<pad>` `<eos>` `<bos>` `<unk>` `<mask>` `[multimodal]` |
| 6-45, 53-97, 99, 102-104 | `<unused0>` ... `<unused88>` |
| 46-52 | `<\\|tool>` `<tool\\|>` `<\\|tool_call>` `<tool_call\\|>` `<\\|tool_response>` `<tool_response\\|>` `<\\|"\\|>` |
| 98, 100, 101, 105, 106 | `<\\|think\\|>` `<\\|channel>` `<channel\\|>` `<\\|turn>` `<turn\\|>` |
| 107-137 | runs of 1-31 newlines |
| 138-237 | runs of 2-101 "▁" |
| 238-493 | byte tokens `<0x00>` ... `<0xFF>` |
| 494-4088 | the corpus's characters (most frequent first), then learned merges |
| 4089-4095 | `<\\|image>` `<\\|audio>` `<\\|image\\|>` `<\\|audio\\|>` `<image\\|>` `<audio\\|>` `<\\|video\\|>` |

Ids 0-237 and 4089-4095 are `added_tokens`; the control, tool, channel,
turn and media tokens are `special: true`, `<mask>`, `[multimodal]`,
`<unusedN>` and the whitespace runs `special: false`, as in Google's file.
Merges are `[left, right]` pairs in rank order: first the whitespace merges
(every split of newline and "▁" runs up to 31, longest left part first, as
in Google's file, plus `("▁"*n, "▁")` for the longer "▁" runs, so a run of
up to 101 spaces is one token), then the merges learned on the corpus.
Digits are never merged (as in Gemma), and nothing is merged across a
newline (newline runs are added tokens).  Characters outside the corpus,
tab included, fall back to byte tokens.

The training corpus is the text written in full inside
`tools/make_test_tokenizer.py`: sentences written for this project in
English, German, French, Spanish, Polish, Russian, Greek, Chinese, Japanese,
Korean, Arabic, Hebrew, Hindi and Thai, plus emoji, digits and punctuation,
and a little C++ and Python.  No data from Google's tokenizer is included;
only the JSON structure is mirrored.

Regenerate (Python 3.11+, standard library only, deterministic):

    python3 tools/make_test_tokenizer.py
"""


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=repo / "resources" / "tokenizers" / "tiny-tokenizer")
    args = ap.parse_args(argv)

    tokenizer, config, stats = build()
    args.out.mkdir(parents=True, exist_ok=True)

    def write(name: str, text: str) -> None:
        with open(args.out / name, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    write("tokenizer.json", json.dumps(tokenizer, ensure_ascii=False, indent=2) + "\n")
    write("tokenizer_config.json", json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    write("chat_template.jinja", CHAT_TEMPLATE)
    write("README.md", README)
    print(
        f"wrote {args.out}: {VOCAB_SIZE} tokens, {stats['chars']} characters, "
        f"{stats['learned_merges']} learned + {stats['whitespace_merges']} whitespace merges, "
        f"corpus {stats['corpus_bytes']} bytes",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
