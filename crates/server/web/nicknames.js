// @ts-check
// Random nicknames in the language shown, for the dice buttons: an adjective and an animal, put
// together as the language does ("Curious Otter", "好奇的水獭", "元気なパンダ", "Zorro Veloz",
// "Flinker Otter"). Every one is at most 32 characters, as the server's nicknames are.

import { ADJECTIVES } from './names.js';

/** @typedef {(random: () => number) => string} Maker */

/** @param {string[]} list @param {() => number} random */
function pick(list, random) {
  return list[Math.floor(random() * list.length) % list.length];
}

const capital = (/** @type {string} */ w) => w.charAt(0).toUpperCase() + w.slice(1);

const EN_ADJECTIVES = ADJECTIVES;
const EN_ANIMALS = [
  'Otter', 'Panda', 'Falcon', 'Koala', 'Dolphin', 'Fox', 'Heron', 'Lynx', 'Owl', 'Penguin',
  'Rabbit', 'Robin', 'Seal', 'Sparrow', 'Tiger', 'Turtle', 'Whale', 'Wombat', 'Yak', 'Zebra',
  'Badger', 'Beaver', 'Crane', 'Gecko', 'Hedgehog', 'Ibis', 'Lemur', 'Marmot', 'Moose', 'Puffin',
];

const ZH_CN_ADJECTIVES = ['勇敢的', '开心的', '安静的', '聪明的', '好奇的', '友好的', '温柔的', '快乐的', '机灵的', '活泼的', '可爱的', '幸运的'];
const ZH_CN_ANIMALS = ['水獭', '熊猫', '狐狸', '考拉', '海豚', '猫头鹰', '企鹅', '兔子', '老虎', '海龟', '鲸鱼', '刺猬', '松鼠', '丹顶鹤'];
const ZH_TW_ADJECTIVES = ['勇敢的', '開心的', '安靜的', '聰明的', '好奇的', '友善的', '溫柔的', '快樂的', '機靈的', '活潑的', '可愛的', '幸運的'];
const ZH_TW_ANIMALS = ['水獺', '熊貓', '狐狸', '無尾熊', '海豚', '貓頭鷹', '企鵝', '兔子', '老虎', '海龜', '鯨魚', '刺蝟', '松鼠', '丹頂鶴'];
const JA_ADJECTIVES = ['元気な', '静かな', 'かしこい', 'やさしい', '陽気な', 'のんびりした', '勇敢な', 'すばやい', '楽しい', 'ふしぎな', 'まじめな', '明るい'];
const JA_ANIMALS = ['カワウソ', 'パンダ', 'キツネ', 'コアラ', 'イルカ', 'フクロウ', 'ペンギン', 'ウサギ', 'トラ', 'カメ', 'クジラ', 'ハリネズミ', 'リス', 'タヌキ'];
// Adjectives whose form is the same for either gender: "Zorro Veloz", "Nutria Veloz".
const ES_INVARIANT = ['Feliz', 'Veloz', 'Amable', 'Alegre', 'Valiente', 'Audaz', 'Genial', 'Tenaz', 'Leal', 'Sutil'];
const ES_ANIMALS = ['Zorro', 'Panda', 'Koala', 'Delfín', 'Búho', 'Pingüino', 'Conejo', 'Tigre', 'Lince', 'Castor', 'Nutria', 'Tortuga', 'Ballena', 'Ardilla'];
// Without an article an adjective ends as the animal's gender asks: -er, -e, -es.
const DE_ADJECTIVES = ['Fröhlich', 'Mutig', 'Flink', 'Klug', 'Ruhig', 'Munter', 'Sanft', 'Heiter', 'Wach', 'Kühn', 'Freundlich', 'Neugierig'];
/** @type {[string, 'er' | 'e' | 'es'][]} */
const DE_ANIMALS = [
  ['Otter', 'er'], ['Fuchs', 'er'], ['Panda', 'er'], ['Delfin', 'er'], ['Pinguin', 'er'], ['Tiger', 'er'], ['Biber', 'er'],
  ['Eule', 'e'], ['Schildkröte', 'e'], ['Robbe', 'e'], ['Katze', 'e'], ['Meise', 'e'],
  ['Eichhörnchen', 'es'], ['Reh', 'es'], ['Zebra', 'es'], ['Känguru', 'es'],
];

/** @type {Record<string, Maker>} */
const MAKERS = {
  en: (random) => `${capital(pick(EN_ADJECTIVES, random))} ${pick(EN_ANIMALS, random)}`,
  'zh-CN': (random) => `${pick(ZH_CN_ADJECTIVES, random)}${pick(ZH_CN_ANIMALS, random)}`,
  'zh-TW': (random) => `${pick(ZH_TW_ADJECTIVES, random)}${pick(ZH_TW_ANIMALS, random)}`,
  ja: (random) => `${pick(JA_ADJECTIVES, random)}${pick(JA_ANIMALS, random)}`,
  es: (random) => `${pick(ES_ANIMALS, random)} ${pick(ES_INVARIANT, random)}`,
  de: (random) => {
    const [animal, ending] = DE_ANIMALS[Math.floor(random() * DE_ANIMALS.length) % DE_ANIMALS.length];
    return `${pick(DE_ADJECTIVES, random)}${ending} ${animal}`;
  },
};

/**
 * A random nickname in language `lang` (English for any other): at most 32 characters.
 * @param {string} lang
 * @param {() => number} [random]
 */
export function localNickname(lang, random = Math.random) {
  const make = MAKERS[lang] ?? MAKERS.en;
  return make(random);
}
