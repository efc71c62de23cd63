"""A small built-in web for the fake OpenRouter: pages its web search finds and its web fetch reads.

Three topics with facts tests can check an answer against (every page's first sentence is what the fake model
quotes when it reads the page):

- Mars rovers: `https://roverlog.test/curiosity`, `https://spacefacts.test/mars/perseverance`,
  `https://spacefacts.test/mars/opportunity`
- Honeybees: `https://hivescience.test/colony`, `https://hivescience.test/waggle-dance`,
  `https://beekeeping.test/honey`
- The printing press: `https://printhistory.test/gutenberg`, `https://printhistory.test/gutenberg-bible`,
  `https://typesetting.test/caxton`

Hosts are under `.test`, a name reserved for testing, so no URL here can be mistaken for a real page.
"""

from __future__ import annotations

__all__ = ["PAGES"]

PAGES: dict[str, tuple[str, str]] = {
    "https://roverlog.test/curiosity": (
        "Curiosity: six years of Gale Crater",
        "NASA's Curiosity rover landed in Gale Crater on Mars on 6 August 2012. "
        "It was launched on 26 November 2011 from Cape Canaveral. "
        "The rover is about the size of a small car, 2.9 metres long, and weighs 899 kilograms. "
        "It is powered by a radioisotope thermoelectric generator rather than by solar panels. "
        "In 2013 it found evidence that Gale Crater once held a lake that could have supported microbial life.",
    ),
    "https://spacefacts.test/mars/perseverance": (
        "Perseverance and Ingenuity in Jezero Crater",
        "Perseverance landed in Jezero Crater on Mars on 18 February 2021. "
        "It was launched on 30 July 2020 and carried the Ingenuity helicopter under its belly. "
        "Ingenuity made the first powered flight on another planet on 19 April 2021. "
        "The helicopter flew 72 times before a damaged rotor blade ended its mission in January 2024. "
        "Perseverance collects rock cores in sealed tubes for a future sample return mission.",
    ),
    "https://spacefacts.test/mars/opportunity": (
        "Opportunity: a 90-sol rover that lasted 14 years",
        "Opportunity landed on Meridiani Planum on Mars on 25 January 2004, three weeks after its twin Spirit. "
        "It was designed to work for 90 sols but kept driving for more than 14 years. "
        "It covered 45.16 kilometres, a record for driving on another world at the time. "
        "A planet-wide dust storm cut contact on 10 June 2018, and NASA declared the mission over on "
        "13 February 2019.",
    ),
    "https://hivescience.test/colony": (
        "Inside a honeybee colony",
        "A honeybee colony holds 20,000 to 80,000 bees in summer, with a single queen. "
        "The queen can lay up to 2,000 eggs a day at the height of the season. "
        "Worker bees are sterile females; in summer a worker lives about six weeks. "
        "Drones are males whose main role is to mate with a queen from another colony.",
    ),
    "https://hivescience.test/waggle-dance": (
        "The honeybee waggle dance",
        "Forager honeybees tell their nestmates where food is with the waggle dance. "
        "The angle of the waggle run against the vertical gives the direction of the food relative to the sun. "
        "The length of the waggle run encodes the distance to the food. "
        "Karl von Frisch decoded the dance and shared the Nobel Prize in Physiology or Medicine in 1973.",
    ),
    "https://beekeeping.test/honey": (
        "How honeybees make honey",
        "Honeybees make honey from flower nectar, which foragers carry home in a honey stomach. "
        "House bees fan the nectar with their wings until its water content drops to about 18 percent. "
        "A single worker bee makes about one twelfth of a teaspoon of honey in her lifetime. "
        "A colony visits some two million flowers to make one pound of honey.",
    ),
    "https://printhistory.test/gutenberg": (
        "Johannes Gutenberg and movable type",
        "Johannes Gutenberg introduced printing with movable metal type in Mainz around 1450. "
        "His type was cast from an alloy of lead, tin and antimony. "
        "He also developed an oil-based ink that stuck to metal type. "
        "Gutenberg died in Mainz on 3 February 1468.",
    ),
    "https://printhistory.test/gutenberg-bible": (
        "The Gutenberg Bible",
        "The Gutenberg Bible was printed in Mainz and finished by 1455. "
        "About 180 copies were made, some on vellum and most on paper. "
        "Each page has 42 lines of text in two columns, so it is also called the 42-line Bible. "
        "Forty-nine copies are known to survive, 21 of them complete.",
    ),
    "https://typesetting.test/caxton": (
        "William Caxton brings printing to England",
        "William Caxton set up the first printing press in England at Westminster in 1476. "
        "The first dated book printed in England was The Dictes or Sayengis of the Philosophres, in 1477. "
        "Caxton printed an edition of Geoffrey Chaucer's The Canterbury Tales around 1476. "
        "Before that he had printed the first book in English, at Bruges, around 1473.",
    ),
}
